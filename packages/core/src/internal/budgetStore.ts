/**
 * The budget stores: in memory, and in Redis with the memory store as its local view.
 *
 * In Redis, a key's spending in a period is one string holding a double, changed by Lua scripts
 * (atomic: one `reserve` sees the spending every other instance left), expiring when the period
 * and its grace are over. Every answer from Redis is copied into the local view, so that during
 * an outage a key goes on from what it had spent across all instances, plus this instance's calls;
 * what is spent meanwhile is queued and added to Redis when it is back.
 *
 * @internal
 */
import type * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Redis from "effect/persistence/Redis"
import type * as Budget from "../Budget.js"
import { type Guard, segment } from "./sharedStore.js"

type Service = Budget.BudgetStore["Service"]

/** @internal */
export interface MemoryStore {
  readonly reserve: (
    options: Parameters<Service["reserve"]>[0]
  ) => Effect.Effect<{ readonly admitted: boolean; readonly spentUsd: number }>
  readonly add: (options: Parameters<Service["add"]>[0]) => Effect.Effect<number>
  readonly spent: (options: Parameters<Service["spent"]>[0]) => Effect.Effect<number>
  /** Sets a key's spending to what the shared store says it is. */
  readonly seed: (key: string, period: number, spentUsd: number, expiresAt: number) => void
}

/** @internal */
export const memory = (clock: Clock.Clock): MemoryStore => {
  const entries = new Map<string, { spent: number; readonly expiresAt: number }>()
  let sweepAt = 1024
  const entry = (key: string, period: number, expiresAt: number) => {
    const id = `${period}\u0000${key}`
    let found = entries.get(id)
    if (found === undefined) {
      if (entries.size >= sweepAt) {
        const now = clock.currentTimeMillisUnsafe()
        for (const [other, { expiresAt }] of entries) if (expiresAt <= now) entries.delete(other)
        sweepAt = Math.max(1024, entries.size * 2)
      }
      found = { spent: 0, expiresAt }
      entries.set(id, found)
    }
    return found
  }
  return {
    reserve: (options) =>
      Effect.sync(() => {
        const found = entry(options.key, options.period, options.expiresAt)
        if (found.spent >= options.limitUsd) return { admitted: false, spentUsd: found.spent }
        found.spent += options.amountUsd
        return { admitted: true, spentUsd: found.spent }
      }),
    add: (options) =>
      Effect.sync(() => {
        const found = entry(options.key, options.period, options.expiresAt)
        found.spent = Math.max(0, found.spent + options.amountUsd)
        return found.spent
      }),
    spent: (options) => Effect.sync(() => entries.get(`${options.period}\u0000${options.key}`)?.spent ?? 0),
    seed: (key, period, spentUsd, expiresAt) => {
      entry(key, period, expiresAt).spent = spentUsd
    }
  }
}

// Doubles cross the Lua boundary as text with 17 significant digits, which round-trips them: a
// Lua number returned as is would be truncated to an integer by Redis.
const reserveScript = Redis.script(
  (key: string, amountUsd: number, limitUsd: number, ttlMillis: number) => [key, amountUsd, limitUsd, ttlMillis],
  {
    numberOfKeys: 1,
    lua: `
local spent = tonumber(redis.call("GET", KEYS[1]) or "0")
if spent >= tonumber(ARGV[2]) then
  return { 0, string.format("%.17g", spent) }
end
spent = spent + tonumber(ARGV[1])
redis.call("SET", KEYS[1], string.format("%.17g", spent), "PX", ARGV[3])
return { 1, string.format("%.17g", spent) }
`
  }
).withReturnType<readonly [admitted: number, spentUsd: string]>()

const addScript = Redis.script(
  (key: string, amountUsd: number, ttlMillis: number) => [key, amountUsd, ttlMillis],
  {
    numberOfKeys: 1,
    lua: `
local spent = tonumber(redis.call("GET", KEYS[1]) or "0") + tonumber(ARGV[1])
if spent < 0 then spent = 0 end
redis.call("SET", KEYS[1], string.format("%.17g", spent), "PX", ARGV[2])
return string.format("%.17g", spent)
`
  }
).withReturnType<string>()

/** @internal */
export const redis = (
  client: Redis.Redis["Service"],
  guard: Guard,
  clock: Clock.Clock
): Service => {
  const local = memory(clock)
  const reserve = client.eval(reserveScript)
  const add = client.eval(addScript)
  const keyOf = (key: string, period: number) => `${guard.settings.prefix}budget:${period}:${segment(key)}`
  // relative to our `Clock`, not Redis's: the period and its end come from the same clock
  const ttl = (expiresAt: number) => String(Math.max(1, Math.ceil(expiresAt - clock.currentTimeMillisUnsafe())))

  const addLater = (options: Parameters<Service["add"]>[0]) =>
    guard.enqueue(
      "budget.add",
      Effect.suspend(() => add(keyOf(options.key, options.period), options.amountUsd, Number(ttl(options.expiresAt))))
    )

  return {
    reserve: (options) =>
      guard.run(
        "budget.reserve",
        Effect.suspend(() =>
          Effect.map(
            reserve(
              keyOf(options.key, options.period),
              options.amountUsd,
              options.limitUsd,
              Number(ttl(options.expiresAt))
            ),
            ([admitted, spent]) => {
              const spentUsd = Number(spent)
              local.seed(options.key, options.period, spentUsd, options.expiresAt)
              return { admitted: admitted === 1, spentUsd }
            }
          )
        ),
        Effect.tap(
          local.reserve(options),
          ({ admitted }) => admitted && options.amountUsd !== 0 ? addLater(options) : Effect.void
        )
      ),
    add: (options) =>
      guard.run(
        "budget.add",
        Effect.suspend(() =>
          Effect.map(
            add(keyOf(options.key, options.period), options.amountUsd, Number(ttl(options.expiresAt))),
            (spent) => {
              const spentUsd = Number(spent)
              local.seed(options.key, options.period, spentUsd, options.expiresAt)
              return spentUsd
            }
          )
        ),
        Effect.tap(local.add(options), () => addLater(options))
      ),
    spent: (options) =>
      guard.run(
        "budget.spent",
        Effect.map(
          client.send<string | null>("GET", keyOf(options.key, options.period)),
          (spent) => spent === null ? 0 : Number(spent)
        ),
        local.spent(options)
      )
  }
}
