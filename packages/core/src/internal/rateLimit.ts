/**
 * A deployment's limiter: Effect's token buckets for requests and tokens per minute, scaled by an
 * adaptive factor kept in the `AdaptiveStore`, and the in-memory adaptive store.
 *
 * @internal
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as RateLimiter from "effect/persistence/RateLimiter"
import * as Predicate from "effect/Predicate"
import * as LlmError from "../LlmError.js"
import * as RateLimit from "../RateLimit.js"
import { count, duration, finite } from "./options.js"

const WINDOW = Duration.minutes(1)
const DEFAULT_DECREASE = 0.5
const DEFAULT_INCREASE = 0.05
const DEFAULT_FLOOR = 0.1
const DEFAULT_COOLDOWN = Duration.seconds(1)
const DEFAULT_OUTPUT_TOKENS = 256

/** @internal */
export const refusals = Metric.counter("resilient_llm_rate_limit_refusals_total", {
  description: "Calls a client-side rate limit had no room for, by model, deployment and limit",
  incremental: true
})

/** @internal */
export const factorGauge = Metric.gauge("resilient_llm_rate_limit_factor", {
  description: "Share of its configured rate a deployment may use after the provider's 429s"
})

const full: RateLimit.AdaptiveState = { factor: 1, cooldownUntil: 0 }

// steps of 0.05 added to 0.25 should land on 0.5, not 0.49999999999999994 (which would make a limit
// of 100 a limit of 49)
const rounded = (factor: number): number => Math.round(factor * 1e9) / 1e9

/** @internal */
export const memoryStore = () => {
  const states = new Map<string, RateLimit.AdaptiveState>()
  const read = (key: string) => states.get(key) ?? full
  const write = (key: string, state: RateLimit.AdaptiveState, now: number) => {
    // a key back at its full rate and not cooling down is the default: nothing to keep
    if (state.factor >= 1 && state.cooldownUntil <= now) states.delete(key)
    else states.set(key, state)
    return state
  }
  return {
    /** Sets a key's state to what a shared store says it is. */
    set: (key: string, state: RateLimit.AdaptiveState, now: number): void => {
      write(key, state, now)
    },
    get: (key: string) => Effect.sync(() => read(key)),
    throttled: (options: {
      readonly key: string
      readonly decrease: number
      readonly floor: number
      readonly cooldownUntil: number
    }) =>
      Effect.clockWith((clock) =>
        Effect.sync(() => {
          const state = read(options.key)
          return write(options.key, {
            factor: rounded(Math.max(options.floor, state.factor * options.decrease)),
            cooldownUntil: Math.max(state.cooldownUntil, options.cooldownUntil)
          }, clock.currentTimeMillisUnsafe())
        })
      ),
    succeeded: (options: { readonly key: string; readonly increase: number }) =>
      Effect.clockWith((clock) =>
        Effect.sync(() => {
          const state = read(options.key)
          if (state.factor >= 1) return state
          return write(options.key, {
            factor: rounded(Math.min(1, state.factor + options.increase)),
            cooldownUntil: state.cooldownUntil
          }, clock.currentTimeMillisUnsafe())
        })
      )
  }
}

interface Config {
  readonly rpm: number | undefined
  readonly tpm: number | undefined
  readonly adaptive:
    | {
      readonly decrease: number
      readonly increase: number
      readonly floor: number
      readonly cooldown: Duration.Duration
    }
    | undefined
}

const validate = (options: RateLimit.Options): Config | string => {
  const rpm = options.rpm === undefined ? undefined : count("rpm", options.rpm)
  if (typeof rpm === "string") return rpm
  const tpm = options.tpm === undefined ? undefined : count("tpm", options.tpm)
  if (typeof tpm === "string") return tpm
  if (options.adaptive === false) return { rpm, tpm, adaptive: undefined }
  const adaptive = options.adaptive ?? {}
  const decrease = finite("adaptive.decrease", adaptive.decrease ?? DEFAULT_DECREASE, { min: 0, max: 1 })
  if (typeof decrease === "string") return decrease
  // a factor of 0 would shut the deployment for good
  if (decrease === 0) return "adaptive.decrease must be above 0, got 0"
  const increase = finite("adaptive.increase", adaptive.increase ?? DEFAULT_INCREASE, { min: 0, max: 1 })
  if (typeof increase === "string") return increase
  const floor = finite("adaptive.floor", adaptive.floor ?? DEFAULT_FLOOR, { min: 0, max: 1 })
  if (typeof floor === "string") return floor
  if (floor === 0) return "adaptive.floor must be above 0, got 0"
  const cooldown = duration("adaptive.cooldown", adaptive.cooldown ?? DEFAULT_COOLDOWN, { zero: true })
  if (typeof cooldown === "string") return cooldown
  return { rpm, tpm, adaptive: { decrease, increase, floor, cooldown } }
}

/** The limit after the adaptive factor: never below one, so a deployment is never shut for good. */
const scaled = (limit: number, factor: number): number => Math.max(1, Math.floor(limit * factor))

/** @internal */
export const make = (
  options: RateLimit.Options
): Effect.Effect<
  RateLimit.Limiter,
  RateLimit.RateLimitConfigError,
  RateLimiter.RateLimiter | RateLimit.AdaptiveStore
> =>
  Effect.gen(function*() {
    const config = validate(options)
    if (typeof config === "string") {
      return yield* new RateLimit.RateLimitConfigError({ reason: config })
    }
    const limiter = yield* RateLimiter.RateLimiter
    const store = yield* RateLimit.AdaptiveStore
    const key = options.key ?? options.deployment ?? options.model
    const labels = { model: options.model, deployment: options.deployment ?? "" }
    const refusalsOf = {
      rpm: Metric.withAttributes(refusals, { ...labels, limit: "rpm" }),
      tpm: Metric.withAttributes(refusals, { ...labels, limit: "tpm" }),
      cooldown: Metric.withAttributes(refusals, { ...labels, limit: "cooldown" })
    }
    const factorOf = Metric.withAttributes(factorGauge, labels)

    const warn = (error: { readonly message: string }) =>
      Effect.logWarning(`${error.message}; the call goes ahead without the rate limit`).pipe(
        Effect.annotateLogs({ "llm.model": options.model, "llm.deployment": options.deployment ?? "" })
      )

    const adaptiveState: Effect.Effect<RateLimit.AdaptiveState> = config.adaptive === undefined
      ? Effect.succeed(full)
      : store.get(key).pipe(Effect.catch((error) => Effect.as(warn(error), full)))

    const throttled = (
      limit: "rpm" | "tpm" | "cooldown",
      retryAfter: Duration.Duration,
      detail?: string
    ): Effect.Effect<never, LlmError.ThrottledError> =>
      Effect.andThen(
        Metric.update(refusalsOf[limit], 1),
        Effect.fail(
          new LlmError.ThrottledError({
            model: options.model,
            deployment: options.deployment,
            limit,
            retryAfter,
            ...(detail === undefined ? {} : { detail })
          })
        )
      )

    const bucket = (name: "rpm" | "tpm", limit: number) => ({
      algorithm: "token-bucket" as const,
      window: WINDOW,
      limit,
      key: `${key}:${name}`
    })

    /** Takes `tokens` from a bucket, or says when room comes; a store failure lets the call through. */
    const take = (
      name: "rpm" | "tpm",
      limit: number,
      tokens: number
    ): Effect.Effect<Option.Option<Duration.Duration>> =>
      limiter.consume({ ...bucket(name, limit), onExceeded: "fail", tokens }).pipe(
        Effect.as(Option.none<Duration.Duration>()),
        Effect.catch((error) =>
          error.reason._tag === "RateLimitExceeded"
            ? Effect.succeed(Option.some(error.reason.retryAfter))
            : Effect.as(warn(error), Option.none<Duration.Duration>())
        )
      )

    /** Adds `tokens` to a bucket (negative: takes them), whatever room it has: a correction. */
    const adjust = (name: "rpm" | "tpm", limit: number, tokens: number): Effect.Effect<void> =>
      limiter.consume({ ...bucket(name, limit), onExceeded: "delay", tokens: -tokens }).pipe(
        Effect.asVoid,
        Effect.catch(warn)
      )

    const tryAcquire = (tokens: number): Effect.Effect<RateLimit.Permit, LlmError.ThrottledError> =>
      Effect.flatMap(adaptiveState, (state) =>
        Effect.clockWith((clock) => {
          const now = clock.currentTimeMillisUnsafe()
          if (state.cooldownUntil > now) return throttled("cooldown", Duration.millis(state.cooldownUntil - now))
          const rpm = config.rpm === undefined ? undefined : scaled(config.rpm, state.factor)
          const tpm = config.tpm === undefined ? undefined : scaled(config.tpm, state.factor)
          const wanted = tpm === undefined ? 0 : Math.max(0, Math.ceil(tokens))
          const permit: RateLimit.Permit = { tokens: wanted, factor: state.factor }
          const takeTokens = Effect.suspend((): Effect.Effect<RateLimit.Permit, LlmError.ThrottledError> => {
            if (tpm === undefined || wanted === 0) return Effect.succeed(permit)
            if (config.tpm !== undefined && wanted > config.tpm) {
              return throttled(
                "tpm",
                Duration.infinity,
                `the request needs about ${wanted} tokens, more than the limit of ${config.tpm} a minute`
              )
            }
            return Effect.flatMap(take("tpm", tpm, wanted), (retryAfter) =>
              Option.isNone(retryAfter)
                ? Effect.succeed(permit)
                // the request taken a moment ago goes back: this call is not made
                : Effect.andThen(
                  rpm === undefined ? Effect.void : adjust("rpm", rpm, 1),
                  throttled(
                    "tpm",
                    retryAfter.value,
                    wanted > tpm ? `the request needs about ${wanted} tokens, the limit is ${tpm} now` : undefined
                  )
                ))
          })
          if (rpm === undefined) return takeTokens
          return Effect.flatMap(
            take("rpm", rpm, 1),
            (retryAfter) => Option.isNone(retryAfter) ? takeTokens : throttled("rpm", retryAfter.value)
          )
        }))

    const acquire = (
      tokens: number,
      maxWait: Duration.Input
    ): Effect.Effect<RateLimit.Permit, LlmError.ThrottledError> => {
      const bound = Duration.toMillis(Duration.fromInputUnsafe(maxWait))
      return Effect.clockWith((clock) => {
        const deadline = clock.currentTimeMillisUnsafe() + bound
        const loop: Effect.Effect<RateLimit.Permit, LlmError.ThrottledError> = Effect.catch(
          tryAcquire(tokens),
          (refused) => {
            const wait = Duration.toMillis(refused.retryAfter)
            // another caller may take the room first: try again, as long as the bound allows
            return clock.currentTimeMillisUnsafe() + wait <= deadline
              ? Effect.andThen(Effect.sleep(Duration.millis(Math.max(1, wait))), loop)
              : Effect.fail(refused)
          }
        )
        return loop
      })
    }

    const settle = (permit: RateLimit.Permit, usedTokens: number | undefined): Effect.Effect<void> => {
      if (config.tpm === undefined || usedTokens === undefined || !Number.isFinite(usedTokens) || usedTokens < 0) {
        return Effect.void
      }
      const tpm = scaled(config.tpm, permit.factor)
      const extra = Math.ceil(usedTokens) - permit.tokens
      if (extra > 0) return adjust("tpm", tpm, -extra)
      if (extra === 0) return Effect.void
      // give back what was not used, but never beyond a full bucket: a refund must not let a
      // later burst through that the limit would have refused
      return limiter.consume({ ...bucket("tpm", tpm), onExceeded: "delay", tokens: 0 }).pipe(
        Effect.flatMap(({ remaining }) => {
          const refund = Math.min(-extra, Math.max(0, tpm - remaining))
          return refund > 0 ? adjust("tpm", tpm, refund) : Effect.void
        }),
        Effect.catch(warn)
      )
    }

    const adaptive = config.adaptive
    const report = (state: RateLimit.AdaptiveState) => Metric.update(factorOf, state.factor)

    const succeeded: Effect.Effect<void> = adaptive === undefined || adaptive.increase === 0
      ? Effect.void
      : Effect.flatMap(adaptiveState, (state) =>
        state.factor >= 1 ? Effect.void : store.succeeded({ key, increase: adaptive.increase }).pipe(
          Effect.flatMap(report),
          Effect.catch(warn)
        ))

    const rateLimited = (retryAfter: Option.Option<Duration.Duration>): Effect.Effect<void> =>
      adaptive === undefined ? Effect.void : Effect.clockWith((clock) => {
        const wait = Option.getOrElse(retryAfter, () =>
          adaptive.cooldown)
        return store.throttled({
          key,
          decrease: adaptive.decrease,
          floor: adaptive.floor,
          cooldownUntil: clock.currentTimeMillisUnsafe() + Duration.toMillis(wait)
        }).pipe(
          Effect.flatMap((state) =>
            Effect.andThen(
              report(state),
              Effect.logWarning("provider rate limit: rate lowered").pipe(
                Effect.annotateLogs({
                  "llm.model": options.model,
                  "llm.deployment": options.deployment ?? "",
                  "rateLimit.factor": state.factor,
                  "rateLimit.cooldownMs": Duration.toMillis(wait)
                })
              )
            )
          ),
          Effect.catch(warn)
        )
      })

    const status: Effect.Effect<RateLimit.Status> = Effect.flatMap(adaptiveState, (state) =>
      Effect.clockWith((clock) =>
        Effect.succeed({
          factor: state.factor,
          rpm: config.rpm === undefined ? undefined : scaled(config.rpm, state.factor),
          tpm: config.tpm === undefined ? undefined : scaled(config.tpm, state.factor),
          cooldownMs: Math.max(0, state.cooldownUntil - clock.currentTimeMillisUnsafe())
        })
      ))

    // Without a limit or adaptive state there is nothing to take, correct or report: a deployment
    // without limits pays nothing for its limiter.
    if (config.rpm === undefined && config.tpm === undefined && adaptive === undefined) {
      const permit = Effect.succeed<RateLimit.Permit>({ tokens: 0, factor: 1 })
      return {
        options,
        tryAcquire: () =>
          permit,
        acquire: () =>
          permit,
        settle: () =>
          Effect.void,
        succeeded,
        rateLimited,
        status
      }
    }
    return { options, tryAcquire, acquire, settle, succeeded, rateLimited, status }
  })

const textLength = (content: unknown): number => {
  if (typeof content === "string") return content.length
  if (!Array.isArray(content)) return 0
  let length = 0
  for (const part of content) {
    if (Predicate.hasProperty(part, "text") && typeof part.text === "string") length += part.text.length
  }
  return length
}

/** @internal */
export const estimateTokens = (
  request: { readonly messages: ReadonlyArray<unknown>; readonly max_tokens?: number | null | undefined },
  options?: { readonly defaultOutput?: number }
): { readonly input: number; readonly output: number } => {
  let characters = 0
  for (const message of request.messages) {
    if (Predicate.hasProperty(message, "content")) characters += textLength(message.content)
  }
  const input = Math.ceil(characters / 4) + 4 * request.messages.length
  const completionLimit = Predicate.hasProperty(request, "max_completion_tokens") ?
    request.max_completion_tokens :
    undefined
  const limit = typeof request.max_tokens === "number" ? request.max_tokens : completionLimit
  const output = typeof limit === "number" && Number.isFinite(limit) && limit >= 0
    ? Math.ceil(limit)
    : options?.defaultOutput ?? DEFAULT_OUTPUT_TOKENS
  return { input, output }
}
