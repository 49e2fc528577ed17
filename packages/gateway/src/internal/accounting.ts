/**
 * What one request may spend, and what it did: before the pattern runs, its key's budgets (US
 * dollars, requests, tokens) set its estimate aside and its virtual model's rate limit takes its
 * room, or one of them refuses it; while it runs, every deployment call it makes is told to its
 * `Tally` as it ends (`Deployments.observeCalls`); once it is over, the budgets and the limit book
 * what it really spent in place of the estimate.
 *
 * @internal
 */
import type * as Budget from "@resilient-llm/core/Budget"
import type * as ChatCompletion from "@resilient-llm/core/ChatCompletion"
import * as Cost from "@resilient-llm/core/Cost"
import type * as Deployments from "@resilient-llm/core/Deployments"
import type * as LlmError from "@resilient-llm/core/LlmError"
import * as RateLimit from "@resilient-llm/core/RateLimit"
import * as Effect from "effect/Effect"
import type { History } from "./history.js"
import * as Keys from "./keys.js"
import type * as Runtime from "./runtime.js"

/** The status history's series of one deployment of a logical model. */
export const deploymentSeries = (model: string, deployment: string): string => `deployment\u0000${model}/${deployment}`

/** Every deployment call of one request, added up as each ends. */
export class Tally {
  calls = 0
  /** Calls whose cost is known: their usage was reported and their deployment has a price. */
  priced = 0
  costUsd = 0
  /** Tokens of the calls that reported their usage. */
  tokens = 0
  /** Calls that succeeded without reporting their usage: their estimate stands. */
  unreported = 0
  private readonly served: Array<{ readonly model: string; readonly deployment: string }> = []

  constructor(private readonly history: History) {}

  readonly observe = (call: Deployments.CallEnd): void => {
    this.calls++
    if (call.costUsd !== undefined) {
      this.priced++
      this.costUsd += call.costUsd
    }
    if (call.tokens !== undefined) this.tokens += call.tokens.input + call.tokens.output
    else if (call.outcome === "success") this.unreported++
    if (call.outcome === "success") this.served.push({ model: call.model, deployment: call.deployment })
    if (call.outcome !== "interrupted") {
      this.history.record(
        deploymentSeries(call.model, call.deployment),
        call.durationMs,
        call.outcome !== "success",
        call.costUsd
      )
    }
  }

  /** The deployment of the first call of `model` that succeeded: the one whose answer was served. */
  servedBy(model: string): string | undefined {
    return this.served.find((call) => call.model === model)?.deployment
  }
}

/** Why a request may not run: a spent budget, or its virtual model's rate limit. */
export type Refusal =
  | {
    readonly _tag: "Budget"
    readonly kind: Keys.Kind
    readonly limit: number
    readonly resetsAt: number
  }
  | { readonly _tag: "Throttled"; readonly error: LlmError.ThrottledError }

interface Reserved {
  readonly budget: Budget.Budget
  readonly kind: Keys.Kind
  readonly reservation: Budget.Reservation
}

/** What a request set aside before it ran, to be settled once it is over. */
export interface Admission {
  readonly reserved: ReadonlyArray<Reserved>
  readonly permit: { readonly limiter: RateLimit.Limiter; readonly permit: RateLimit.Permit } | undefined
  /** Per call: the estimate a call that reported nothing keeps. */
  readonly perCall: { readonly tokens: number; readonly costUsd: number }
}

/** What a request without a budget or a rate limit sets aside. */
export const nothing: Admission = { reserved: [], permit: undefined, perCall: { tokens: 0, costUsd: 0 } }

/** Whether a request needs anything set aside at all. */
export const isAccounted = (route: Runtime.Route, key: Keys.Key | undefined): boolean =>
  route.limit !== undefined || key?.budget !== undefined

/** The estimate of one call of `route`: its tokens, and their cost at the dearest deployment it can reach. */
const estimateOf = (route: Runtime.Route, prompt: ChatCompletion.PromptRequest) => {
  const tokens = RateLimit.estimateTokens(prompt)
  let costUsd = 0
  for (const price of route.prices) {
    costUsd = Math.max(
      costUsd,
      Cost.of(price, { input: tokens.input, cachedInput: 0, output: tokens.output, reasoning: 0 })
    )
  }
  return { tokens: tokens.input + tokens.output, costUsd }
}

const giveBack = (reserved: ReadonlyArray<Reserved>): Effect.Effect<void> =>
  Effect.forEach(reserved, ({ budget, reservation }) => budget.settle(reservation, 0), { discard: true })

/**
 * Sets a request's estimate aside in its key's budgets (requests, then tokens, then US dollars)
 * and takes room in its virtual model's rate limit, waiting up to the limit's `maxWait`; or
 * refuses it, giving back what was already set aside.
 */
export const admit = (
  route: Runtime.Route,
  key: Keys.Key | undefined,
  prompt: ChatCompletion.PromptRequest
): Effect.Effect<Admission, Refusal> => {
  if (!isAccounted(route, key)) return Effect.succeed(nothing)
  return Effect.gen(function*() {
    const perCall = estimateOf(route, prompt)
    const amounts: Record<Keys.Kind, number> = {
      requests: 1,
      tokens: perCall.tokens * route.calls,
      usd: perCall.costUsd * route.calls
    }
    const reserved: Array<Reserved> = []
    const budgets = key?.budget
    if (key !== undefined && budgets !== undefined) {
      for (const kind of Keys.kinds) {
        const budget = budgets[kind]
        if (budget === undefined) continue
        const reservation = yield* budget.reserve({
          key: Keys.storeKey(kind, key.name),
          model: route.name,
          estimateUsd: amounts[kind]
        }).pipe(
          Effect.catchTag("BudgetExceededError", (error) =>
            Effect.andThen(
              giveBack(reserved),
              Effect.fail<Refusal>({ _tag: "Budget", kind, limit: error.limitUsd, resetsAt: error.resetsAt })
            ))
        )
        reserved.push({ budget, kind, reservation })
      }
    }
    const limit = route.limit
    if (limit === undefined) return { reserved, permit: undefined, perCall }
    const permit = yield* limit.limiter.acquire(amounts.tokens, limit.maxWait).pipe(
      Effect.catchTag(
        "ThrottledError",
        (error) => Effect.andThen(giveBack(reserved), Effect.fail<Refusal>({ _tag: "Throttled", error }))
      )
    )
    return { reserved, permit: { limiter: limit.limiter, permit }, perCall }
  })
}

/**
 * Books what a request spent in place of its estimate: the tokens and cost its calls reported,
 * and the estimate of each call that succeeded without reporting them. A call that failed without
 * a usage cost nothing.
 */
export const settle = (admission: Admission, tally: Tally): Effect.Effect<void> => {
  if (admission === nothing) return Effect.void
  const tokens = tally.tokens + tally.unreported * admission.perCall.tokens
  const costUsd = tally.costUsd + tally.unreported * admission.perCall.costUsd
  return Effect.andThen(
    Effect.forEach(admission.reserved, ({ budget, kind, reservation }) =>
      kind === "requests"
        ? Effect.void
        : budget.settle(reservation, kind === "tokens" ? tokens : costUsd), { discard: true }),
    admission.permit === undefined
      ? Effect.void
      : admission.permit.limiter.settle(admission.permit.permit, tally.calls === 0 ? 0 : tokens)
  )
}
