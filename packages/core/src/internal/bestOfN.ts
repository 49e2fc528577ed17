/**
 * The best-of-n runner: one fiber per candidate that generates, then judges, and writes what
 * became of it into its own slot, so whatever an early stop interrupts is still reported.
 *
 * @internal
 */
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Ref from "effect/Ref"
import * as Result from "effect/Result"
import * as Semaphore from "effect/Semaphore"
import type * as BestOfN from "../BestOfN.js"
import * as ChatClient from "../ChatClient.js"
import * as ChatCompletion from "../ChatCompletion.js"
import * as Judge from "../Judge.js"
import * as Observability from "../Observability.js"
import { promptText } from "./judge.js"
import { count, finite, isPositiveInteger, optionalDuration, show } from "./options.js"
import * as retry from "./retry.js"

const blank = (model: string, index: number) => ({
  model,
  index,
  completion: undefined,
  text: undefined,
  score: undefined,
  judgement: undefined,
  latencyMs: undefined,
  tokens: undefined,
  judgeLatencyMs: undefined,
  error: undefined
})

const cancelled = (model: string, index: number): BestOfN.Cancelled => ({ ...blank(model, index), status: "cancelled" })

const shouldStop = (
  candidates: ReadonlyArray<BestOfN.Candidate>,
  required: number,
  targetScore: number
): boolean => {
  const scored = candidates.filter((candidate): candidate is BestOfN.Scored => candidate.status === "scored")
  return scored.length >= required && scored.some((candidate) => candidate.score >= targetScore)
}

/**
 * The options, checked.
 *
 * @internal
 */
export interface Config {
  readonly required: number
  readonly concurrency: number | undefined
  readonly timeout: Duration.Duration | undefined
  readonly judgeTimeout: Duration.Duration | undefined
}

/**
 * The checked options, or why they describe no call.
 *
 * @internal
 */
export const validate = (options: BestOfN.Options): Config | string => {
  if (!Array.isArray(options.models)) return "models must be a list of model names"
  const blank = options.models.findIndex((model) => typeof model !== "string" || model.trim().length === 0)
  if (blank >= 0) return `model ${blank + 1} of ${options.models.length} has no name`
  const required = count("minCandidates", options.minCandidates ?? 1)
  if (typeof required === "string") return required
  const concurrency = options.concurrency
  if (concurrency !== undefined && concurrency !== "unbounded" && !isPositiveInteger(concurrency)) {
    return `concurrency must be a whole number of at least 1 or "unbounded", got ${show(concurrency)}`
  }
  const timeout = optionalDuration("candidateTimeout", options.candidateTimeout, { infinite: true })
  if (typeof timeout === "string") return timeout
  const judgeTimeout = optionalDuration("judgeTimeout", options.judgeTimeout, { infinite: true })
  if (typeof judgeTimeout === "string") return judgeTimeout
  if (options.earlyStop !== undefined) {
    const target = finite("earlyStop.targetScore", options.earlyStop.targetScore)
    if (typeof target === "string") return target
  }
  return {
    required,
    concurrency: concurrency === "unbounded" ? undefined : concurrency,
    timeout,
    judgeTimeout
  }
}

/**
 * Runs every candidate and returns them all, in `models` order.
 *
 * @internal
 */
export const run = (
  request: ChatCompletion.PromptRequest,
  options: BestOfN.Options,
  config: Config
): Effect.Effect<ReadonlyArray<BestOfN.Candidate>, never, ChatClient.ChatClient | Judge.Judge> =>
  Effect.gen(function*() {
    const client = yield* ChatClient.ChatClient
    const judge = yield* Judge.Judge
    const prompt = options.judgePrompt ?? promptText(request.messages)
    const slots = yield* Ref.make<ReadonlyArray<BestOfN.Candidate>>(options.models.map(cancelled))
    const stop = yield* Deferred.make<void>()
    const required = config.required
    const permits = config.concurrency === undefined
      ? Option.none()
      : Option.some(yield* Semaphore.make(config.concurrency))
    const timeout = config.timeout
    const judgeTimeout = config.judgeTimeout

    const settle = (candidate: BestOfN.Candidate) =>
      Ref.modify(slots, (all) => {
        const next = all.map((slot, i) => i === candidate.index ? candidate : slot)
        return [next, next] as const
      })

    const generate = (model: string, index: number) => {
      const call = client.create(ChatCompletion.withModel(request, model))
      // Exactly `candidateTimeout`: under Effect 4, `timeoutOrElse` lets an answer arriving at the
      // limit itself win (the tests pin it), so the deadline is inclusive without padding.
      const bounded = timeout === undefined ? call : retry.timeout(call, model, timeout)
      const timed = bounded.pipe(
        Observability.attempt({ pattern: "best-of-n", model, attributes: { "llm.candidate": index } }),
        Effect.result,
        Effect.timed
      )
      return Option.match(permits, { onNone: () => timed, onSome: (semaphore) => semaphore.withPermits(1)(timed) })
    }

    const scoring = (text: string) =>
      judge.score({ prompt, response: text }).pipe(
        Effect.filterOrFail(
          (score) => Number.isFinite(score.value),
          (score) => new Judge.JudgeError({ reason: "NotANumber", judge: score.judge, reply: String(score.value) })
        )
      )

    // The judge is the first side of the race, so it starts, and its sleeps are registered, before
    // the timer's: a judge answering exactly at the deadline then wins the tie under `TestClock`
    // (whose ties go to the sleep registered first), and the deadline is inclusive, as
    // `candidateTimeout`'s is. The race interrupts the losing judge and waits for it to stop.
    const judgement = (text: string): Effect.Effect<Judge.Score, Judge.JudgeError> =>
      judgeTimeout === undefined ? scoring(text) : Effect.raceFirst(
        scoring(text),
        Effect.andThen(
          Effect.sleep(judgeTimeout),
          Effect.fail(new Judge.JudgeError({ reason: "TimedOut", judge: judge.name ?? "judge", timeout: judgeTimeout }))
        )
      )

    const candidate = (model: string, index: number) =>
      Effect.gen(function*() {
        const [elapsed, generated] = yield* generate(model, index)
        const latencyMs = Duration.toMillis(elapsed)
        if (Result.isFailure(generated)) {
          yield* settle({
            ...blank(model, index),
            status: "failed",
            latencyMs,
            error: generated.failure
          })
          return
        }
        const completion = generated.success
        const text = ChatCompletion.text(completion)
        const answered = {
          ...blank(model, index),
          completion,
          text,
          latencyMs,
          tokens: Option.getOrUndefined(ChatCompletion.tokens(completion))
        }
        yield* settle({ ...answered, status: "cancelled" })
        const [judgeElapsed, judged] = yield* judgement(text).pipe(Effect.result, Effect.timed)
        const judgeLatencyMs = Duration.toMillis(judgeElapsed)
        if (Result.isFailure(judged)) {
          yield* settle({ ...answered, status: "judge-failed", judgeLatencyMs, error: judged.failure })
          return
        }
        const all = yield* settle({
          ...answered,
          status: "scored",
          score: judged.success.value,
          judgement: judged.success,
          judgeLatencyMs
        })
        if (options.earlyStop !== undefined && shouldStop(all, required, options.earlyStop.targetScore)) {
          yield* Deferred.succeed(stop, undefined)
        }
      })

    // `raceFirst`, not `race`: a defect in a candidate must end the call, not leave it waiting
    // for a stop that never comes.
    yield* Effect.forEach(options.models, candidate, { concurrency: "unbounded", discard: true }).pipe(
      Effect.raceFirst(Deferred.await(stop))
    )
    return yield* Ref.get(slots)
  })

/**
 * The scored candidates, best first; a stable sort keeps ties in `models` order.
 *
 * @internal
 */
export const rank = (candidates: ReadonlyArray<BestOfN.Candidate>): ReadonlyArray<BestOfN.Scored> =>
  candidates
    .filter((candidate): candidate is BestOfN.Scored => candidate.status === "scored")
    .sort((a, b) => b.score - a.score || a.index - b.index)
