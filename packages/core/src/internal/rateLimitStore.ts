/**
 * The rate-limit stores in Redis: Effect's own Redis `RateLimiterStore` (its token buckets are one
 * Lua script each, timed by our `Clock`), and the adaptive state as a hash changed by Lua scripts,
 * each behind the guard with an in-memory store as the local view.
 *
 * During an outage each instance counts its limits alone, from full buckets: together the
 * instances may then admit up to their number times the limit. The adaptive state goes on from
 * what Redis last said.
 *
 * @internal
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as RateLimiter from "effect/persistence/RateLimiter"
import * as Redis from "effect/persistence/Redis"
import type * as Scope from "effect/Scope"
import type * as RateLimit from "../RateLimit.js"
import { memoryStore } from "./rateLimit.js"
import { type Guard, segment } from "./sharedStore.js"

type Limiters = RateLimiter.RateLimiterStore["Service"]

/** @internal */
export const limiterStore = (guard: Guard): Effect.Effect<Limiters, never, Redis.Redis | Scope.Scope> =>
  Effect.gen(function*() {
    const remote = yield* RateLimiter.makeStoreRedis({ prefix: `${guard.settings.prefix}ratelimit:` })
    const local = Context.get(yield* Layer.build(RateLimiter.layerStoreMemory), RateLimiter.RateLimiterStore)
    return RateLimiter.RateLimiterStore.of({
      fixedWindow: (options) =>
        guard.run("rateLimit.fixedWindow", remote.fixedWindow(options), local.fixedWindow(options)),
      tokenBucket: (options) =>
        guard.run("rateLimit.tokenBucket", remote.tokenBucket(options), local.tokenBucket(options)),
      adaptiveConsume: (options) =>
        guard.run("rateLimit.adaptiveConsume", remote.adaptiveConsume(options), local.adaptiveConsume(options)),
      adaptiveFeedback: (options) =>
        guard.run("rateLimit.adaptiveFeedback", remote.adaptiveFeedback(options), local.adaptiveFeedback(options))
    })
  })

// The factor crosses the Lua boundary as text (a Lua number would come back truncated), rounded
// to nine decimals as the memory store rounds it.
const throttledScript = Redis.script(
  (key: string, decrease: number, floor: number, cooldownUntil: number, now: number, idleMillis: number) => [
    key,
    decrease,
    floor,
    cooldownUntil,
    now,
    idleMillis
  ],
  {
    numberOfKeys: 1,
    lua: `
local factor = tonumber(redis.call("HGET", KEYS[1], "factor") or "1")
local cooldown = tonumber(redis.call("HGET", KEYS[1], "cooldownUntil") or "0")
factor = math.max(tonumber(ARGV[2]), factor * tonumber(ARGV[1]))
factor = math.floor(factor * 1e9 + 0.5) / 1e9
cooldown = math.max(cooldown, tonumber(ARGV[3]))
if factor >= 1 and cooldown <= tonumber(ARGV[4]) then
  redis.call("DEL", KEYS[1])
else
  redis.call("HSET", KEYS[1], "factor", string.format("%.17g", factor), "cooldownUntil", string.format("%.17g", cooldown))
  redis.call("PEXPIRE", KEYS[1], ARGV[5])
end
return { string.format("%.17g", factor), string.format("%.17g", cooldown) }
`
  }
).withReturnType<readonly [factor: string, cooldownUntil: string]>()

const succeededScript = Redis.script(
  (key: string, increase: number, now: number, idleMillis: number) => [key, increase, now, idleMillis],
  {
    numberOfKeys: 1,
    lua: `
local factor = tonumber(redis.call("HGET", KEYS[1], "factor") or "1")
local cooldown = tonumber(redis.call("HGET", KEYS[1], "cooldownUntil") or "0")
if factor >= 1 then
  return { string.format("%.17g", factor), string.format("%.17g", cooldown) }
end
factor = math.min(1, factor + tonumber(ARGV[1]))
factor = math.floor(factor * 1e9 + 0.5) / 1e9
if factor >= 1 and cooldown <= tonumber(ARGV[2]) then
  redis.call("DEL", KEYS[1])
else
  redis.call("HSET", KEYS[1], "factor", string.format("%.17g", factor))
  redis.call("PEXPIRE", KEYS[1], ARGV[3])
end
return { string.format("%.17g", factor), string.format("%.17g", cooldown) }
`
  }
).withReturnType<readonly [factor: string, cooldownUntil: string]>()

/** @internal */
export const adaptiveStore = (
  client: Redis.Redis["Service"],
  guard: Guard
): RateLimit.AdaptiveStore["Service"] => {
  const local = memoryStore()
  const throttled = client.eval(throttledScript)
  const succeeded = client.eval(succeededScript)
  const keyOf = (key: string) => `${guard.settings.prefix}adaptive:${segment(key)}`
  const idle = guard.settings.idleMillis
  const stateOf = ([factor, cooldownUntil]: readonly [string, string]): RateLimit.AdaptiveState => ({
    factor: Number(factor),
    cooldownUntil: Number(cooldownUntil)
  })
  // what Redis said becomes the local view, which an outage goes on from
  const remember = (key: string, state: RateLimit.AdaptiveState) =>
    Effect.as(
      Effect.clockWith((clock) => Effect.sync(() => local.set(key, state, clock.currentTimeMillisUnsafe()))),
      state
    )
  return {
    get: (key) =>
      guard.run(
        "rateLimit.adaptive.get",
        Effect.flatMap(
          client.send<ReadonlyArray<string | null>>("HMGET", keyOf(key), "factor", "cooldownUntil"),
          ([factor, cooldownUntil]) =>
            remember(key, { factor: Number(factor ?? "1"), cooldownUntil: Number(cooldownUntil ?? "0") })
        ),
        local.get(key)
      ),
    throttled: (options) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) =>
        guard.run(
          "rateLimit.adaptive.throttled",
          Effect.flatMap(
            throttled(keyOf(options.key), options.decrease, options.floor, options.cooldownUntil, now, idle),
            (reply) => remember(options.key, stateOf(reply))
          ),
          local.throttled(options)
        )),
    succeeded: (options) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) =>
        guard.run(
          "rateLimit.adaptive.succeeded",
          Effect.flatMap(
            succeeded(keyOf(options.key), options.increase, now, idle),
            (reply) => remember(options.key, stateOf(reply))
          ),
          local.succeeded(options)
        ))
  }
}
