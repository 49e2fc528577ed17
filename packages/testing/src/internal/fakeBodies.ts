/**
 * Large response bodies produced lazily, one chunk at a time, so the fake can send 20 MB or a
 * million nested brackets without holding them in memory.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"

const encoder = new TextEncoder()

const toBytes = (value: string | Uint8Array): Uint8Array => typeof value === "string" ? encoder.encode(value) : value

/** A block of `size` bytes filled with `pattern` repeated, starting at `offset` into the pattern. */
const fill = (pattern: Uint8Array, size: number, offset = 0): Uint8Array => {
  const block = new Uint8Array(size)
  for (let i = 0; i < size; i++) block[i] = pattern[(offset + i) % pattern.length]
  return block
}

/**
 * `count` copies of `block`, then `tail` when it is not empty, one per stream chunk. The same
 * block instance is emitted each time; the server writes it and never mutates it.
 */
const blocks = (block: Uint8Array, count: number, tail: Uint8Array): Stream.Stream<Uint8Array> =>
  Stream.unfold(0, (i) =>
    Effect.succeed(
      i < count
        ? [block, i + 1] as const
        : i === count && tail.length > 0
        ? [tail, i + 1] as const
        : undefined
    ))

/** @internal */
export const repeatBytes = (
  totalBytes: number,
  pattern: string | Uint8Array = "a",
  chunkBytes = 64 * 1024
): Stream.Stream<Uint8Array> => {
  const bytes = toBytes(pattern)
  const total = Math.max(0, Math.floor(totalBytes))
  if (total === 0 || bytes.length === 0) return Stream.empty
  // a whole number of patterns per block keeps the pattern in phase from one block to the next
  const perBlock = Math.max(bytes.length, Math.floor(Math.max(1, chunkBytes) / bytes.length) * bytes.length)
  const count = Math.floor(total / perBlock)
  const rest = total - count * perBlock
  return blocks(fill(bytes, Math.min(perBlock, total)), count, fill(bytes, rest))
}

/** @internal */
export const nestedJson = (depth: number, chunkBytes = 64 * 1024): Stream.Stream<Uint8Array> => {
  const n = Math.max(0, Math.floor(depth))
  return Stream.concat(repeatBytes(n, "[", chunkBytes), repeatBytes(n, "]", chunkBytes))
}
