/**
 * Circuits in Redis. The state machine stays in TypeScript (`circuitBreakerMachine.ts`), the same
 * for both stores; Redis keeps each key's circuit as a versioned copy, and an event is applied to
 * it by optimistic concurrency: read the copy and its version, apply the event, and write the
 * result back only if the version is still the one read (a Lua compare-and-set). When another
 * instance wrote first, the event is applied again to what it wrote. So every transition, and
 * every admission that changes the circuit (a half-open probe), is made exactly once across all
 * instances: half-open admits `halfOpenProbes` probes in all, not per instance.
 *
 * Why not a Lua script per event, as Effect's own Redis breaker store does? The machine (time
 * windows, N probes, probe deadlines, epochs, break schedules) would have to be written twice, in
 * TypeScript and in Lua, and kept the same; here one machine serves both stores, and the same test
 * suite checks both.
 *
 * A copy is `<version>\n<json>`, expiring when idle.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Redis from "effect/persistence/Redis"
import type * as Machine from "./circuitBreakerMachine.js"
import { type Guard, segment } from "./sharedStore.js"

/** A circuit as Redis holds it. @internal */
export interface Versioned {
  readonly circuit: Machine.Circuit | undefined
  readonly version: number
}

/** Redis could not be asked: the caller goes on with its local view. @internal */
export const Unavailable: unique symbol = Symbol.for("@resilient-llm/core/CircuitBreaker/Unavailable")

/** @internal */
export interface SharedCircuits {
  /** The copy of `key` (`circuit` undefined when there is none, or none that reads as a circuit). */
  readonly read: (key: string) => Effect.Effect<Versioned | typeof Unavailable>
  /** Writes `circuit` if the copy is still at `version`: the new version, or the copy found instead. */
  readonly compareAndSet: (
    key: string,
    version: number,
    circuit: Machine.Circuit
  ) => Effect.Effect<
    { readonly written: number } | { readonly found: Versioned } | typeof Unavailable
  >
}

const phases: ReadonlySet<string> = new Set(["Closed", "Open", "HalfOpen", "Isolated"])

/** A stored circuit, if it is one: anything else (a foreign or damaged value) reads as none. */
const decode = (text: string | null): Versioned => {
  if (text === null) return { circuit: undefined, version: 0 }
  const newline = text.indexOf("\n")
  const version = Number(text.slice(0, newline))
  if (newline < 0 || !Number.isSafeInteger(version)) return { circuit: undefined, version: 0 }
  try {
    const circuit: unknown = JSON.parse(text.slice(newline + 1))
    return isCircuit(circuit) ? { circuit, version } : { circuit: undefined, version }
  } catch {
    return { circuit: undefined, version }
  }
}

const isCircuit = (value: unknown): value is Machine.Circuit =>
  typeof value === "object" && value !== null && "_tag" in value && typeof value._tag === "string" &&
  phases.has(value._tag) && "epoch" in value && typeof value.epoch === "number" && "since" in value &&
  typeof value.since === "number"

const compareAndSetScript = Redis.script(
  (key: string, version: number, json: string, idleMillis: number) => [key, version, json, idleMillis],
  {
    numberOfKeys: 1,
    lua: `
local current = redis.call("GET", KEYS[1])
local version = 0
if current then
  local newline = string.find(current, "\\n", 1, true)
  version = tonumber(newline and string.sub(current, 1, newline - 1) or "") or 0
end
if version ~= tonumber(ARGV[1]) then
  return { 0, current or "" }
end
redis.call("SET", KEYS[1], (version + 1) .. "\\n" .. ARGV[2], "PX", ARGV[3])
return { 1, tostring(version + 1) }
`
  }
).withReturnType<readonly [written: number, value: string]>()

/** @internal */
export const redis = (client: Redis.Redis["Service"], guard: Guard): SharedCircuits => {
  const compareAndSet = client.eval(compareAndSetScript)
  const keyOf = (key: string) => `${guard.settings.prefix}breaker:${segment(key)}`
  const unavailable: Effect.Effect<typeof Unavailable> = Effect.succeed(Unavailable)
  return {
    read: (key) =>
      guard.run<Versioned | typeof Unavailable, Redis.RedisError, never>(
        "breaker.read",
        Effect.map(client.send<string | null>("GET", keyOf(key)), decode),
        unavailable
      ),
    compareAndSet: (key, version, circuit) =>
      guard.run<
        { readonly written: number } | { readonly found: Versioned } | typeof Unavailable,
        Redis.RedisError,
        never
      >(
        "breaker.write",
        Effect.map(
          compareAndSet(keyOf(key), version, JSON.stringify(circuit), guard.settings.idleMillis),
          ([written, value]) =>
            written === 1 ? { written: Number(value) } : { found: decode(value === "" ? null : value) }
        ),
        unavailable
      )
  }
}
