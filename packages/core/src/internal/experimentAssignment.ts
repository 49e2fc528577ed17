/**
 * How a call is given a variant: a point in [0, 1), from `Random` or from a stable hash of the
 * caller's key, mapped onto the variants' cumulative weights.
 *
 * @internal
 */

const encoder = new TextEncoder()

/**
 * 32-bit FNV-1a over bytes.
 *
 * @internal
 */
export const fnv1a32 = (bytes: Uint8Array): number => {
  let hash = 0x811c9dc5
  for (let i = 0; i < bytes.length; i++) {
    hash ^= bytes[i]
    hash = Math.imul(hash, 0x01000193)
  }
  return hash >>> 0
}

/**
 * MurmurHash3's 32-bit finaliser: FNV-1a alone leaves keys that differ only in their last
 * characters ("user-41", "user-42") close together in the high bits, which the [0, 1) mapping
 * reads; the finaliser spreads every input bit over the whole word.
 *
 * @internal
 */
export const fmix32 = (h: number): number => {
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h >>> 0
}

/**
 * The point in [0, 1) of a caller key in an experiment: FNV-1a over the UTF-8 bytes of the
 * experiment's name, a NUL and the key, then the murmur finaliser, divided by 2^32. The same key
 * lands on the same point in every process and every version using this function; the name is
 * part of the input so one user is not in the challenger group of every experiment at once.
 *
 * @internal
 */
export const stickyPoint = (experiment: string, key: string): number =>
  fmix32(fnv1a32(encoder.encode(`${experiment}\u0000${key}`))) / 4294967296

/**
 * The index of the variant a point in [0, 1) falls on, given the weights (non-negative, at least
 * one positive). Zero-weight variants are never chosen.
 *
 * @internal
 */
export const pick = (weights: ReadonlyArray<number>, point: number): number => {
  let total = 0
  for (const weight of weights) total += weight
  const target = point * total
  let cumulative = 0
  let last = -1
  for (let i = 0; i < weights.length; i++) {
    if (weights[i] <= 0) continue
    last = i
    cumulative += weights[i]
    if (target < cumulative) return i
  }
  // only reachable through rounding at the very top of the range
  return last
}
