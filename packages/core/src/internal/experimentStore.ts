/**
 * Where an experiment's records live. In memory, a `Recorder`. In Redis, the same records under
 * the experiment's name, shared by every instance that runs it: per variant a hash of counts and
 * Welford moments, a hash of outcome counts, and a list for the reservoir sample; per experiment
 * the ring of call ids that may still be scored. Each change is one Lua script doing exactly what
 * the `Recorder` does (the same moments, the same reservoir draw from the caller's `Random`, the
 * same bound on outcome labels), so a summary over Redis is the summary of one process that made
 * every instance's calls.
 *
 * The Redis log also keeps a `Recorder` of its own calls: it is the local view while Redis is
 * away (the summary then covers this instance's calls), and the records made meanwhile are queued
 * and written to Redis when it is back.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Redis from "effect/persistence/Redis"
import * as Random from "effect/Random"
import type * as Scope from "effect/Scope"
import type * as Experiment from "../Experiment.js"
import {
  type CallRecord,
  type Finished,
  MAX_OUTCOMES,
  OTHER_OUTCOME,
  Recorder,
  sampleOf,
  type ScoreResult,
  type VariantState
} from "./experimentRecorder.js"
import type { Moments } from "./experimentStats.js"
import { type Guard, segment } from "./sharedStore.js"

/** @internal */
export interface Snapshot {
  readonly variants: ReadonlyArray<VariantState>
  readonly unkeyed: number
}

/** One experiment's records. @internal */
export interface Log {
  /** A call id unique across every instance sharing the log. */
  readonly nextCallId: () => string
  readonly record: (variant: number, call: Finished, u: number, scorable: boolean) => Effect.Effect<void>
  readonly interrupted: (variant: number) => Effect.Effect<void>
  readonly dropped: (variant: number) => Effect.Effect<void>
  readonly unkeyed: Effect.Effect<void>
  readonly score: (callId: string, score: number) => Effect.Effect<ScoreResult>
  readonly snapshot: Effect.Effect<Snapshot>
  /** The sampled calls, variant by variant, each in the order they were recorded. */
  readonly sample: Effect.Effect<ReadonlyArray<CallRecord>>
  readonly size: Effect.Effect<number>
}

/** @internal */
export interface LogConfig {
  readonly name: string
  readonly variants: ReadonlyArray<{ readonly name: string; readonly model: string }>
  readonly sampleSize: number
  readonly scoreWindow: number
}

/** @internal */
export interface Store {
  readonly open: (config: LogConfig) => Effect.Effect<Log, never, Scope.Scope>
}

const memoryLog = (recorder: Recorder): Log => ({
  nextCallId: () => recorder.nextCallId(),
  record: (variant, call, u, scorable) => Effect.sync(() => recorder.record(variant, call, u, scorable)),
  interrupted: (variant) => Effect.sync(() => recorder.interrupted(variant)),
  dropped: (variant) => Effect.sync(() => recorder.dropped(variant)),
  unkeyed: Effect.sync(() => {
    recorder.unkeyed += 1
  }),
  score: (callId, score) => Effect.sync(() => recorder.score(callId, score)),
  snapshot: Effect.sync(() => ({ variants: recorder.variants, unkeyed: recorder.unkeyed })),
  sample: Effect.sync(() => recorder.sample()),
  size: Effect.sync(() => recorder.size)
})

/** @internal */
export const memory: Store = {
  open: (config) =>
    Effect.sync(() => memoryLog(new Recorder(config.name, config.variants, config.sampleSize, config.scoreWindow)))
}

// --- Redis ---------------------------------------------------------------------------------------

// Numbers cross the Lua boundary as text with 17 significant digits (exact for doubles); a Lua
// number returned as is would be truncated to an integer by Redis.
const MOMENT_LUA = `
local function fmt(x) return string.format("%.17g", x) end
local function add_moment(key, name, x)
  local n = tonumber(redis.call("HGET", key, name .. ".n") or "0") + 1
  local mean = tonumber(redis.call("HGET", key, name .. ".mean") or "0")
  local m2 = tonumber(redis.call("HGET", key, name .. ".m2") or "0")
  local delta = x - mean
  mean = mean + delta / n
  m2 = m2 + delta * (x - mean)
  redis.call("HSET", key, name .. ".n", n, name .. ".mean", fmt(mean), name .. ".m2", fmt(m2))
end
`

// KEYS: variant hash, outcomes hash, sample list, scores hash, meta hash, window list, pending hash
// ARGV: variant index, call id, outcome, success, latency, input tokens, output tokens, cost, u,
//       scorable, sample size, score window, idle ms, record json
const recordScript = Redis.script(
  (
    keys: ReadonlyArray<string>,
    variant: number,
    callId: string,
    outcome: string,
    success: boolean,
    latencyMs: number,
    inputTokens: number | undefined,
    outputTokens: number | undefined,
    costUsd: number | undefined,
    u: number,
    scorable: boolean,
    sampleSize: number,
    scoreWindow: number,
    idleMillis: number,
    json: string
  ) => [
    ...keys,
    variant,
    callId,
    outcome,
    success ? 1 : 0,
    latencyMs,
    inputTokens ?? "",
    outputTokens ?? "",
    costUsd ?? "",
    u,
    scorable ? 1 : 0,
    sampleSize,
    scoreWindow,
    idleMillis,
    json
  ],
  {
    numberOfKeys: 7,
    lua: MOMENT_LUA + `
local v, outcomes, sample, scores, meta, window, pending = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local call_id, outcome = ARGV[2], ARGV[3]
local success = ARGV[4] == "1"
redis.call("HINCRBY", v, "calls", 1)
local label = outcome
if redis.call("HEXISTS", outcomes, outcome) == 0 and redis.call("HLEN", outcomes) >= ${MAX_OUTCOMES} then
  label = "${OTHER_OUTCOME}"
end
redis.call("HINCRBY", outcomes, label, 1)
if success then
  add_moment(v, "latency", tonumber(ARGV[5]))
  if ARGV[6] ~= "" then add_moment(v, "inputTokens", tonumber(ARGV[6])) end
  if ARGV[7] ~= "" then add_moment(v, "outputTokens", tonumber(ARGV[7])) end
else
  redis.call("HINCRBY", v, "errors", 1)
end
if ARGV[8] ~= "" then
  local cost = tonumber(ARGV[8])
  add_moment(v, "costUsd", cost)
  local total = tonumber(redis.call("HGET", v, "costTotalUsd") or "0") + cost
  redis.call("HSET", v, "costTotalUsd", fmt(total))
end
local seq = redis.call("HINCRBY", meta, "seq", 1)
local item = call_id .. "\\n" .. seq .. "\\n" .. ARGV[14]
local offered = redis.call("HINCRBY", v, "offered", 1)
local size = tonumber(ARGV[11])
local length = redis.call("LLEN", sample)
local slot = -1
if length < size then
  redis.call("RPUSH", sample, item)
  slot = length
else
  local j = math.floor(tonumber(ARGV[9]) * offered)
  if j < size then
    local old = redis.call("LINDEX", sample, j)
    if old then redis.call("HDEL", scores, string.sub(old, 1, string.find(old, "\\n", 1, true) - 1)) end
    redis.call("LSET", sample, j, item)
    slot = j
  end
end
if ARGV[10] == "1" then
  local ring = tonumber(ARGV[12])
  local filled = redis.call("LLEN", window)
  if filled < ring then
    redis.call("RPUSH", window, call_id)
  else
    local start = tonumber(redis.call("HGET", meta, "windowStart") or "0")
    local oldest = redis.call("LINDEX", window, start)
    if oldest then redis.call("HDEL", pending, oldest) end
    redis.call("LSET", window, start, call_id)
    redis.call("HSET", meta, "windowStart", (start + 1) % ring)
  end
  redis.call("HSET", pending, call_id, ARGV[1] .. ":" .. slot .. ":" .. ARGV[4] .. ":0")
end
for i = 1, 7 do redis.call("PEXPIRE", KEYS[i], ARGV[13]) end
return 1
`
  }
).withReturnType<number>()

// KEYS: pending hash, scores hash, then every variant's hash and sample list in order
// ARGV: call id, score, variants, idle ms
const scoreScript = Redis.script(
  (keys: ReadonlyArray<string>, callId: string, score: number, variants: number, idleMillis: number) => [
    ...keys,
    callId,
    score,
    variants,
    idleMillis
  ],
  {
    numberOfKeys: (keys: ReadonlyArray<string>) => keys.length,
    lua: MOMENT_LUA + `
local entry = redis.call("HGET", KEYS[1], ARGV[1])
if not entry then return "unknown" end
local variant, slot, success, scored = string.match(entry, "^(%d+):(-?%d+):(%d):(%d)$")
if success ~= "1" then return "failed-call" end
if scored == "1" then return "already-scored" end
redis.call("HSET", KEYS[1], ARGV[1], variant .. ":" .. slot .. ":1:1")
local index = tonumber(variant)
add_moment(KEYS[3 + 2 * index], "score", tonumber(ARGV[2]))
local at = tonumber(slot)
if at >= 0 then
  local item = redis.call("LINDEX", KEYS[4 + 2 * index], at)
  if item and string.sub(item, 1, string.len(ARGV[1]) + 1) == ARGV[1] .. "\\n" then
    redis.call("HSET", KEYS[2], ARGV[1], ARGV[2])
  end
end
for i = 1, #KEYS do redis.call("PEXPIRE", KEYS[i], ARGV[4]) end
return "scored"
`
  }
).withReturnType<ScoreResult>()

// KEYS: meta hash, scores hash, pending hash, then every variant's hash, outcomes hash and sample list
const readScript = Redis.script(
  (keys: ReadonlyArray<string>) => keys,
  {
    numberOfKeys: (keys: ReadonlyArray<string>) => keys.length,
    lua: `
local result = {
  redis.call("HGETALL", KEYS[1]),
  redis.call("HGETALL", KEYS[2]),
  redis.call("HLEN", KEYS[3])
}
for i = 4, #KEYS, 3 do
  table.insert(result, redis.call("HGETALL", KEYS[i]))
  table.insert(result, redis.call("HGETALL", KEYS[i + 1]))
  table.insert(result, redis.call("LRANGE", KEYS[i + 2], 0, -1))
end
return result
`
  }
).withReturnType<ReadonlyArray<ReadonlyArray<string> | number>>()

const pairs = (flat: ReadonlyArray<string> | number): Map<string, string> => {
  const map = new Map<string, string>()
  if (typeof flat === "number") return map
  for (let i = 0; i + 1 < flat.length; i += 2) map.set(flat[i], flat[i + 1])
  return map
}

const momentOf = (hash: Map<string, string>, name: string): Moments => ({
  n: Number(hash.get(`${name}.n`) ?? "0"),
  mean: Number(hash.get(`${name}.mean`) ?? "0"),
  m2: Number(hash.get(`${name}.m2`) ?? "0")
})

/** A sampled call as Redis keeps it: its exported line, without the experiment's name or the score (kept apart). */
type StoredRecord = Omit<Experiment.ExportedCall, "experiment" | "score">

/** A sampled call as stored: `callId\nseq\njson`; undefined when it is not one. */
const parseItem = (item: string, scores: Map<string, string>): CallRecord | undefined => {
  const first = item.indexOf("\n")
  const second = item.indexOf("\n", first + 1)
  if (first < 0 || second < 0) return undefined
  try {
    const stored: StoredRecord = JSON.parse(item.slice(second + 1))
    const score = scores.get(stored.callId)
    return {
      seq: Number(item.slice(first + 1, second)),
      callId: stored.callId,
      variant: stored.variant,
      model: stored.model,
      shadow: stored.shadow,
      startedAt: stored.startedAt,
      latencyMs: stored.latencyMs,
      outcome: stored.outcome,
      inputTokens: stored.inputTokens ?? undefined,
      outputTokens: stored.outputTokens ?? undefined,
      costUsd: stored.costUsd ?? undefined,
      score: score === undefined ? undefined : Number(score)
    }
  } catch {
    return undefined
  }
}

// One count up and the hash's idle expiry, in one round trip and one step.
const incrementScript = Redis.script(
  (key: string, field: string, idleMillis: number) => [key, field, idleMillis],
  {
    numberOfKeys: 1,
    lua: `
redis.call("HINCRBY", KEYS[1], ARGV[1], 1)
redis.call("PEXPIRE", KEYS[1], ARGV[2])
return 1
`
  }
).withReturnType<number>()

/** @internal */
export const redis = (client: Redis.Redis["Service"], guard: Guard): Store => {
  const incrementBy = client.eval(incrementScript)
  const record = client.eval(recordScript)
  const score = client.eval(scoreScript)
  const read = client.eval(readScript)
  const idle = guard.settings.idleMillis
  return {
    open: (config) =>
      Effect.gen(function*() {
        const base = `${guard.settings.prefix}experiment:${segment(config.name)}:`
        const variantKey = (index: number) => `${base}v:${segment(config.variants[index].name)}`
        const meta = `${base}meta`
        const scores = `${base}scores`
        const window = `${base}window`
        const pending = `${base}pending`
        const localLog = yield* memory.open(config)
        // call ids name the instance, so that instances sharing the experiment never issue the same one
        const instance = (yield* Random.nextIntBetween(0, 36 ** 6)).toString(36).padStart(6, "0")
        let calls = 0

        // a write that must reach Redis: now, or once it is back
        const write = (
          operation: string,
          remote: Effect.Effect<unknown, Redis.RedisError>,
          locally: Effect.Effect<void>
        ) =>
          Effect.andThen(
            locally,
            guard.run(operation, Effect.asVoid(remote), guard.enqueue(operation, remote))
          )

        const increment = (key: string, field: string) => incrementBy(key, field, idle)

        const log: Log = {
          nextCallId: () => `${config.name}-${instance}-${++calls}`,
          record: (variant, call, u, scorable) => {
            const names = config.variants[variant]
            const stored: StoredRecord = {
              callId: call.callId,
              variant: names.name,
              model: names.model,
              shadow: call.shadow,
              startedAt: call.startedAt,
              latencyMs: call.latencyMs,
              outcome: call.outcome,
              inputTokens: call.inputTokens ?? null,
              outputTokens: call.outputTokens ?? null,
              costUsd: call.costUsd ?? null
            }
            const vkey = variantKey(variant)
            return write(
              "experiment.record",
              record(
                [vkey, `${vkey}:outcomes`, `${vkey}:sample`, scores, meta, window, pending],
                variant,
                call.callId,
                call.outcome,
                call.outcome === "success",
                call.latencyMs,
                call.inputTokens,
                call.outputTokens,
                call.costUsd,
                u,
                scorable,
                config.sampleSize,
                config.scoreWindow,
                idle,
                JSON.stringify(stored)
              ),
              localLog.record(variant, call, u, scorable)
            )
          },
          interrupted: (variant) =>
            write(
              "experiment.interrupted",
              increment(variantKey(variant), "interrupted"),
              localLog.interrupted(variant)
            ),
          dropped: (variant) =>
            write("experiment.dropped", increment(variantKey(variant), "shadowDropped"), localLog.dropped(variant)),
          unkeyed: write("experiment.unkeyed", increment(meta, "unkeyed"), localLog.unkeyed),
          score: (callId, value) => {
            const keys = [
              pending,
              scores,
              ...config.variants.flatMap((_, i) => [variantKey(i), `${variantKey(i)}:sample`])
            ]
            const remote = score(keys, callId, value, config.variants.length, idle)
            return Effect.flatMap(localLog.score(callId, value), (locally) =>
              guard.run(
                "experiment.score",
                remote,
                // Redis is away: this instance's own calls are scored now, and in Redis once it is back
                Effect.as(locally === "scored" ? guard.enqueue("experiment.score", remote) : Effect.void, locally)
              ))
          },
          snapshot: guard.run(
            "experiment.summary",
            Effect.map(
              read([
                meta,
                scores,
                pending,
                ...config.variants.flatMap((
                  _,
                  i
                ) => [variantKey(i), `${variantKey(i)}:outcomes`, `${variantKey(i)}:sample`])
              ]),
              (reply): Snapshot => {
                const metaHash = pairs(reply[0])
                const scoreHash = pairs(reply[1])
                const variants = config.variants.map((_, index): VariantState => {
                  const hash = pairs(reply[3 + 3 * index])
                  const outcomes = new Map<string, number>()
                  for (const [label, n] of pairs(reply[4 + 3 * index])) outcomes.set(label, Number(n))
                  const items = reply[5 + 3 * index]
                  const reservoir: Array<CallRecord> = []
                  if (typeof items !== "number") {
                    for (const item of items) {
                      const parsed = parseItem(item, scoreHash)
                      if (parsed !== undefined) reservoir.push(parsed)
                    }
                  }
                  const number = (field: string) => Number(hash.get(field) ?? "0")
                  return {
                    calls: number("calls"),
                    errors: number("errors"),
                    interrupted: number("interrupted"),
                    shadowDropped: number("shadowDropped"),
                    outcomes,
                    latency: momentOf(hash, "latency"),
                    inputTokens: momentOf(hash, "inputTokens"),
                    outputTokens: momentOf(hash, "outputTokens"),
                    costUsd: momentOf(hash, "costUsd"),
                    costTotalUsd: number("costTotalUsd"),
                    score: momentOf(hash, "score"),
                    offered: number("offered"),
                    reservoir
                  }
                })
                return { variants, unkeyed: Number(metaHash.get("unkeyed") ?? "0") }
              }
            ),
            localLog.snapshot
          ),
          sample: Effect.suspend(() => Effect.map(log.snapshot, ({ variants }) => sampleOf(variants))),
          size: guard.run(
            "experiment.size",
            Effect.map(
              Effect.all([
                client.send<number>("HLEN", pending),
                Effect.forEach(config.variants, (_, i) => client.send<number>("LLEN", `${variantKey(i)}:sample`))
              ]),
              ([pendingCount, lengths]) => lengths.reduce((sum, n) => sum + n, pendingCount)
            ),
            localLog.size
          )
        }
        return log
      })
  }
}
