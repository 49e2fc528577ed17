/**
 * Spending limits per key (a user, a team, a tenant) over a period: once a key has spent its
 * limit, its calls are refused with `BudgetExceededError` until the next period starts, before any
 * model is asked. The deployments router (`Deployments`) enforces the budget of its config: it
 * sets aside each call's estimated cost before sending it (so concurrent calls cannot all slip
 * under the limit at once), then books what the call really cost from the provider's `usage`, or
 * gives the estimate back when the call failed.
 *
 * A call is charged to the key set with `Budget.withKey`; a call without a key is not budgeted.
 * Periods are fixed windows counted from the Unix epoch (UTC): `"1 day"` resets at midnight UTC,
 * `"1 hour"` on the hour; `"30 days"` is thirty days, not a calendar month.
 *
 * Spending lives in a `BudgetStore`: `layerStoreMemory` keeps it in the process;
 * `Stores.layerRedis` keeps it in Redis, so that every instance of an application spends from
 * one budget.
 *
 * @example
 * ```ts
 * import { Budget, ChatCompletion, Fallback } from "@resilient-llm/core"
 *
 * // with a budget in the deployments config: { limitUsd: 5, period: "1 day", keys: { "team-a": 50 } }
 * const answer = Fallback.chain(["gpt-4o"])(ChatCompletion.prompt("Hello")).pipe(Budget.withKey("team-a"))
 * ```
 *
 * @since 0.2.0
 */
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { dual } from "effect/Function"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import * as internal from "./internal/budgetStore.js"
import { durationOf, DurationText, NonNegative } from "./internal/configSchema.js"
import * as LlmError from "./LlmError.js"

/**
 * A budget as plain data: every key may spend `limitUsd` US dollars per `period` (a duration such
 * as `"1 day"`), except the keys listed in `keys`, which have limits of their own.
 *
 * @since 0.2.0
 * @category schemas
 */
export const Config = Schema.Struct({
  limitUsd: NonNegative,
  period: DurationText({ positive: true }),
  keys: Schema.optionalKey(Schema.Record(Schema.String, NonNegative))
})

/**
 * @since 0.2.0
 * @category models
 */
export interface Config extends Schema.Schema.Type<typeof Config> {}

/**
 * The key the calls of an effect are charged to; none by default.
 *
 * @since 0.2.0
 * @category references
 */
export const CurrentKey: Context.Reference<string | undefined> = Context.Reference<string | undefined>(
  "@resilient-llm/core/Budget/CurrentKey",
  { defaultValue: () => undefined }
)

/**
 * Charges the model calls of an effect to `key`.
 *
 * @example
 * ```ts
 * import { Budget, ChatClient, ChatCompletion } from "@resilient-llm/core"
 *
 * const call = ChatClient.create(ChatCompletion.withModel(ChatCompletion.prompt("Hello"), "gpt-4o"))
 * const charged = call.pipe(Budget.withKey("team-a"))
 * ```
 *
 * @since 0.2.0
 * @category combinators
 */
export const withKey: {
  (key: string): <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  <A, E, R>(self: Effect.Effect<A, E, R>, key: string): Effect.Effect<A, E, R>
} = dual(2, <A, E, R>(self: Effect.Effect<A, E, R>, key: string) => Effect.provideService(self, CurrentKey, key))

/**
 * A budget store could not be read or written.
 *
 * @since 0.2.0
 * @category errors
 */
export class BudgetStoreError extends Data.TaggedError("BudgetStoreError")<{
  readonly reason: string
  readonly cause?: unknown
}> {
  override get message(): string {
    return `The budget store failed: ${this.reason}`
  }
}

/**
 * Where spending is kept: per key and period (the period's number since the epoch), in US
 * dollars. Every operation is atomic for its key, so an implementation over a shared database
 * can serve several processes. Entries may be dropped after `expiresAt` (epoch milliseconds).
 *
 * @since 0.2.0
 * @category services
 */
export class BudgetStore extends Context.Service<BudgetStore, {
  /**
   * If the key has spent less than `limitUsd` in the period, adds `amountUsd` and admits the call;
   * otherwise changes nothing. Returns the decision and the spending after it.
   */
  readonly reserve: (options: {
    readonly key: string
    readonly period: number
    readonly amountUsd: number
    readonly limitUsd: number
    readonly expiresAt: number
  }) => Effect.Effect<{ readonly admitted: boolean; readonly spentUsd: number }, BudgetStoreError>
  /** Adds `amountUsd` (negative to give some back) and returns the spending after it. */
  readonly add: (options: {
    readonly key: string
    readonly period: number
    readonly amountUsd: number
    readonly expiresAt: number
  }) => Effect.Effect<number, BudgetStoreError>
  /** What the key has spent in the period. */
  readonly spent: (
    options: { readonly key: string; readonly period: number }
  ) => Effect.Effect<number, BudgetStoreError>
}>()("@resilient-llm/core/Budget/BudgetStore") {}

/**
 * A `BudgetStore` in this process's memory. Entries of past periods are swept as the store grows,
 * so memory follows the number of keys active in the current period.
 *
 * @since 0.2.0
 * @category layers
 */
export const layerStoreMemory: Layer.Layer<BudgetStore> = Layer.effect(
  BudgetStore,
  Effect.clockWith((clock) => Effect.sync(() => BudgetStore.of(internal.memory(clock))))
)

/**
 * What a key has spent in the current period, against its limit.
 *
 * @since 0.2.0
 * @category models
 */
export interface Status {
  readonly key: string
  readonly spentUsd: number
  readonly limitUsd: number
  /** When the current period ends, in epoch milliseconds. */
  readonly resetsAt: number
}

/**
 * An amount set aside for one call, to be settled once its real cost is known.
 *
 * @since 0.2.0
 * @category models
 */
export interface Reservation {
  readonly key: string
  readonly period: number
  readonly amountUsd: number
  readonly expiresAt: number
}

/**
 * A budget in use.
 *
 * @since 0.2.0
 * @category models
 */
export interface Budget {
  readonly config: Config
  /** The limit of a key per period, in US dollars. */
  readonly limitOf: (key: string) => number
  /**
   * Sets `estimateUsd` aside for a call to `model` charged to `key`, or refuses the call with
   * `BudgetExceededError` when the key has already spent its limit this period. A store that
   * fails admits the call (a budget is not worth an outage) and logs a warning.
   */
  readonly reserve: (options: {
    readonly key: string
    readonly model: string
    readonly estimateUsd: number
  }) => Effect.Effect<Reservation, LlmError.BudgetExceededError>
  /** Books the call's real cost in place of its estimate (0 for a call that cost nothing). */
  readonly settle: (reservation: Reservation, costUsd: number) => Effect.Effect<void>
  readonly status: (key: string) => Effect.Effect<Status, BudgetStoreError>
}

// entries outlive their period by a day, so a late settlement still finds them
const GRACE_MS = 86_400_000

/**
 * A budget over the `BudgetStore` in context.
 *
 * @since 0.2.0
 * @category constructors
 */
export const make = (config: Config): Effect.Effect<Budget, never, BudgetStore> =>
  Effect.map(BudgetStore, (store) => {
    const periodMs = Math.max(1, Duration.toMillis(durationOf(config.period)))
    const limitOf = (key: string): number =>
      config.keys !== undefined && Object.prototype.hasOwnProperty.call(config.keys, key)
        ? config.keys[key]
        : config.limitUsd
    const periodAt = (now: number) => {
      const period = Math.floor(now / periodMs)
      const resetsAt = (period + 1) * periodMs
      return { period, resetsAt, expiresAt: resetsAt + GRACE_MS }
    }
    const warn = (error: BudgetStoreError) =>
      Effect.logWarning(`${error.message}; the call goes ahead unbudgeted`).pipe(
        Effect.annotateLogs({ "budget.error": error.reason })
      )
    return {
      config,
      limitOf,
      reserve: ({ estimateUsd, key, model }) =>
        Effect.clockWith((clock) => {
          const { expiresAt, period, resetsAt } = periodAt(clock.currentTimeMillisUnsafe())
          const limitUsd = limitOf(key)
          const reservation: Reservation = { key, period, amountUsd: estimateUsd, expiresAt }
          return store.reserve({ key, period, amountUsd: estimateUsd, limitUsd, expiresAt }).pipe(
            Effect.matchEffect({
              onFailure: (error) => Effect.as(warn(error), { ...reservation, amountUsd: 0 }),
              onSuccess: ({ admitted, spentUsd }) =>
                admitted
                  ? Effect.succeed(reservation)
                  : Effect.fail(new LlmError.BudgetExceededError({ model, key, spentUsd, limitUsd, resetsAt }))
            })
          )
        }),
      settle: (reservation, costUsd) =>
        costUsd === reservation.amountUsd ? Effect.void : store.add({
          key: reservation.key,
          period: reservation.period,
          amountUsd: costUsd - reservation.amountUsd,
          expiresAt: reservation.expiresAt
        }).pipe(Effect.asVoid, Effect.catch(warn)),
      status: (key) =>
        Effect.clockWith((clock) => {
          const { period, resetsAt } = periodAt(clock.currentTimeMillisUnsafe())
          return Effect.map(
            store.spent({ key, period }),
            (spentUsd): Status => ({ key, spentUsd, limitUsd: limitOf(key), resetsAt })
          )
        })
    }
  })
