/**
 * Semantic failures: a model that answers `200 OK` with nothing useful has still failed. A check
 * looks at a completion and accepts it, or rejects it with a reason:
 *
 * | check | rejects | reason |
 * | --- | --- | --- |
 * | `nonEmpty` | no text (or only spaces) and no tool call; a refusal | `empty` |
 * | `notTruncated` | an answer cut off by its token limit (`finish_reason: "length"`) | `truncated` |
 * | `json(schema)` | text that is not JSON matching the schema (structured output) | `invalid` |
 * | `predicate(f, description)`, `effect(f, description)` | what the caller's function says no to | `rejected` |
 *
 * `Fallback.chain(models, { accept })` runs the check on every answer, inside the attempt: a
 * rejected answer is an `AnswerRejectedError` of that model, retried (it is retryable) and passed
 * to the next model like any error, and reported in the chain's attempts with its reason. A
 * circuit breaker counts it only when the check says so (`countingForBreaker`): an answer the
 * caller does not like is not usually a sign that the model is down. `verify` applies a check to
 * any effect that yields a completion.
 *
 * @example
 * ```ts
 * import { Answer, ChatCompletion, Fallback } from "@resilient-llm/core"
 * import { Schema } from "effect"
 *
 * const Invoice = Schema.Struct({ total: Schema.Number, currency: Schema.String })
 *
 * const extract = Fallback.chain(["gpt-4o-mini", "gpt-4o"], {
 *   accept: Answer.all([Answer.nonEmpty, Answer.notTruncated, Answer.json(Invoice)]),
 *   retry: { retries: 1 }
 * })
 * const served = extract(ChatCompletion.prompt("Extract the invoice as JSON: ...", { max_tokens: 200 }))
 * ```
 *
 * @since 0.2.0
 */
import * as Effect from "effect/Effect"
import { dual } from "effect/Function"
import * as Schema from "effect/Schema"
import type * as ChatCompletion from "./ChatCompletion.js"
import * as LlmError from "./LlmError.js"

/**
 * Why an answer was rejected, and what was wrong with it.
 *
 * @since 0.2.0
 * @category models
 */
export interface Rejection {
  readonly reason: LlmError.AnswerRejectedError["reason"]
  readonly detail: string
}

/**
 * A check of a completion: it succeeds to accept it, or fails with the `Rejection`.
 *
 * @since 0.2.0
 * @category models
 */
export interface Check<R = never> {
  readonly run: (completion: ChatCompletion.ChatCompletion) => Effect.Effect<void, Rejection, R>
  /** Whether a circuit breaker counts a rejection as a failure of the model. */
  readonly countsForBreaker: boolean
}

const MAX_DETAIL = 512

const cut = (text: string): string => text.length <= MAX_DETAIL ? text : `${text.slice(0, MAX_DETAIL)}…`

const reject = (reason: Rejection["reason"], detail: string): Effect.Effect<never, Rejection> =>
  Effect.fail({ reason, detail: cut(detail) })

/**
 * A check from a function returning its rejection, `undefined` to accept.
 *
 * @since 0.2.0
 * @category constructors
 */
export const make = (f: (completion: ChatCompletion.ChatCompletion) => Rejection | undefined): Check => ({
  run: (completion) =>
    Effect.suspend(() => {
      const rejection = f(completion)
      return rejection === undefined ? Effect.void : reject(rejection.reason, rejection.detail)
    }),
  countsForBreaker: false
})

/**
 * Rejects an answer without text and without a tool call (`empty`), and a refusal.
 *
 * @since 0.2.0
 * @category checks
 */
export const nonEmpty: Check = make((completion) => {
  const message = completion.choices[0].message
  if (typeof message.refusal === "string" && message.refusal.length > 0) {
    return { reason: "empty", detail: `the model refused: ${message.refusal}` }
  }
  if (message.tool_calls != null && message.tool_calls.length > 0) return undefined
  const content = message.content ?? ""
  return content.trim().length > 0 ? undefined : { reason: "empty", detail: "no text and no tool call" }
})

/**
 * Rejects an answer the provider cut off at its token limit (`finish_reason` of `length`, or
 * `max_tokens` as some compatible endpoints say it): `truncated`.
 *
 * @since 0.2.0
 * @category checks
 */
export const notTruncated: Check = make((completion) => {
  const reason = completion.choices[0].finish_reason
  return reason === "length" || reason === "max_tokens"
    ? { reason: "truncated", detail: `finish_reason ${JSON.stringify(reason)}` }
    : undefined
})

/**
 * Rejects an answer whose text is not JSON that decodes with `schema` (`invalid`, with the
 * schema's message): for structured output.
 *
 * @since 0.2.0
 * @category checks
 */
export const json = <A, I>(schema: Schema.Codec<A, I>): Check => {
  const decode = Schema.decodeUnknownEffect(Schema.fromJsonString(schema))
  return {
    run: (completion) =>
      decode(completion.choices[0].message.content ?? "").pipe(
        Effect.asVoid,
        Effect.catch((error) => reject("invalid", error.message))
      ),
    countsForBreaker: false
  }
}

/**
 * Rejects an answer `f` returns `false` for (`rejected`, with `description`).
 *
 * @since 0.2.0
 * @category checks
 */
export const predicate = (
  f: (completion: ChatCompletion.ChatCompletion) => boolean,
  description: string
): Check => make((completion) => f(completion) ? undefined : { reason: "rejected", detail: description })

/**
 * Rejects an answer the effect `f` says `false` for (`rejected`, with `description`); an effect
 * that fails rejects it too, with its error's message: a check that could not decide does not
 * accept.
 *
 * @since 0.2.0
 * @category checks
 */
export const effect = <E, R>(
  f: (completion: ChatCompletion.ChatCompletion) => Effect.Effect<boolean, E, R>,
  description: string
): Check<R> => ({
  run: (completion) =>
    f(completion).pipe(
      Effect.catch((error) =>
        reject(
          "rejected",
          `${description}: the check failed: ${error instanceof Error ? error.message : String(error)}`
        )
      ),
      Effect.flatMap((accepted) => accepted ? Effect.void : reject("rejected", description))
    ),
  countsForBreaker: false
})

/**
 * Every check in order; the first rejection wins. A breaker counts it when any check does.
 *
 * @since 0.2.0
 * @category combinators
 */
export const all = <R>(checks: ReadonlyArray<Check<R>>): Check<R> => ({
  run: (completion) => Effect.forEach(checks, (check) => check.run(completion), { discard: true }),
  countsForBreaker: checks.some((check) => check.countsForBreaker)
})

/**
 * The same check, whose rejections a circuit breaker counts as failures of the model.
 *
 * @since 0.2.0
 * @category combinators
 */
export const countingForBreaker = <R>(check: Check<R>): Check<R> => ({ ...check, countsForBreaker: true })

/**
 * Runs `check` on the completion the effect yields: a rejection fails it with
 * `AnswerRejectedError` of `model`.
 *
 * @example
 * ```ts
 * import { Answer, ChatClient, ChatCompletion } from "@resilient-llm/core"
 *
 * const call = ChatClient.create(ChatCompletion.withModel(ChatCompletion.prompt("Hi"), "gpt-4o")).pipe(
 *   Answer.verify(Answer.nonEmpty, "gpt-4o")
 * )
 * ```
 *
 * @since 0.2.0
 * @category combinators
 */
export const verify: {
  <R2>(
    check: Check<R2>,
    model: string
  ): <E, R>(
    self: Effect.Effect<ChatCompletion.ChatCompletion, E, R>
  ) => Effect.Effect<ChatCompletion.ChatCompletion, E | LlmError.AnswerRejectedError, R | R2>
  <E, R, R2>(
    self: Effect.Effect<ChatCompletion.ChatCompletion, E, R>,
    check: Check<R2>,
    model: string
  ): Effect.Effect<ChatCompletion.ChatCompletion, E | LlmError.AnswerRejectedError, R | R2>
} = dual(3, <E, R, R2>(
  self: Effect.Effect<ChatCompletion.ChatCompletion, E, R>,
  check: Check<R2>,
  model: string
): Effect.Effect<ChatCompletion.ChatCompletion, E | LlmError.AnswerRejectedError, R | R2> =>
  Effect.tap(self, (completion) =>
    check.run(completion).pipe(
      Effect.mapError((rejection) =>
        new LlmError.AnswerRejectedError({
          model,
          reason: rejection.reason,
          detail: rejection.detail,
          countsForBreaker: check.countsForBreaker
        })
      )
    )))
