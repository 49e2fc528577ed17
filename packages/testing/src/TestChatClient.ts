/**
 * A `ChatClient` that plays a script instead of calling a provider: per model, a sequence of
 * outcomes (reply, fail, hang), each after a delay that `Effect.sleep` waits, so `TestClock`
 * moves it and a test of a ten-minute outage runs in no real time. Every call is recorded with
 * how it ended, interruption included, for assertions.
 *
 * @example
 * ```ts
 * import { LlmError } from "@resilient-llm/core"
 * import { TestChatClient } from "@resilient-llm/testing"
 *
 * const layer = TestChatClient.layer({
 *   "gpt-4o": [TestChatClient.fail(new LlmError.ServerError({ model: "gpt-4o", status: 503 }))],
 *   "claude": [TestChatClient.reply("hello", { delay: "200 millis" })]
 * })
 * ```
 *
 * @since 0.1.0
 */
import * as ChatClient from "@resilient-llm/core/ChatClient"
import * as ChatCompletion from "@resilient-llm/core/ChatCompletion"
import * as LlmError from "@resilient-llm/core/LlmError"
import * as Cause from "effect/Cause"
import * as Chunk from "effect/Chunk"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as HashMap from "effect/HashMap"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Ref from "effect/Ref"
import * as Stream from "effect/Stream"
import { pieces } from "./internal/fakeWire.js"

/**
 * One scripted outcome of a call.
 *
 * - `Reply`: after `delay`, answer `content`. Streamed, the content comes as one chunk per word,
 *   `chunkDelay` apart; with `failAfterChunks` the stream fails after that many chunks.
 * - `Fail`: after `delay`, fail with `error`.
 * - `Hang`: never answer (until interrupted).
 *
 * @since 0.1.0
 * @category models
 */
export type Outcome =
  | {
    readonly _tag: "Reply"
    readonly content: string
    readonly delay: Duration.Duration
    readonly usage: ChatCompletion.Usage | undefined
    /** The `finish_reason` of the reply (`"stop"` unless given), e.g. `"length"` for a cut answer. */
    readonly finishReason?: string | undefined
    readonly chunkDelay: Duration.Duration
    readonly failAfterChunks: { readonly chunks: number; readonly error: LlmError.LlmError } | undefined
  }
  | { readonly _tag: "Fail"; readonly error: LlmError.LlmError; readonly delay: Duration.Duration }
  | { readonly _tag: "Hang" }

/**
 * A model's script: a list of outcomes played in order (the last one repeats once the list is
 * used up), or a function of the call's index (0 for the first call to that model) and request.
 *
 * @since 0.1.0
 * @category models
 */
export type ModelScript =
  | ReadonlyArray<Outcome>
  | ((index: number, request: ChatCompletion.ChatRequest) => Outcome)

/**
 * Scripts by model name. A call to a model that is not in the script fails with
 * `ModelNotFoundError`.
 *
 * @since 0.1.0
 * @category models
 */
export type Script = Readonly<Record<string, ModelScript>>

/**
 * A recorded call: which model, with which request, when it started and ended (by `Clock`), and
 * how it ended. A `"failure"` carries its `LlmError` (a defect is a `"failure"` without one);
 * `"interrupted"` is a call cut short from outside (a timeout, a lost race, an early stop); a
 * stream whose consumer stops reading early is a `"success"`: nothing went wrong with the call.
 *
 * @since 0.1.0
 * @category models
 */
export interface Call {
  readonly model: string
  readonly request: ChatCompletion.ChatRequest
  readonly kind: "create" | "stream"
  readonly startedAt: number
  readonly endedAt: number | undefined
  readonly result: "pending" | "success" | "failure" | "interrupted"
  readonly error: LlmError.LlmError | undefined
}

/**
 * An outcome that answers `content` after `delay` (default: at once), with `usage` (default: 10
 * prompt tokens and one completion token per word). Streamed, the content comes one word per chunk,
 * `chunkDelay` apart; with `failAfterChunks` the stream fails with its error after that many chunks.
 *
 * @since 0.1.0
 * @category constructors
 */
export const reply = (content: string, options?: {
  readonly delay?: Duration.Input
  readonly usage?: ChatCompletion.Usage
  readonly finishReason?: string
  readonly chunkDelay?: Duration.Input
  readonly failAfterChunks?: { readonly chunks: number; readonly error: LlmError.LlmError }
}): Outcome => ({
  _tag: "Reply",
  content,
  delay: Duration.fromInputUnsafe(options?.delay ?? Duration.zero),
  usage: options?.usage,
  finishReason: options?.finishReason,
  chunkDelay: Duration.fromInputUnsafe(options?.chunkDelay ?? Duration.zero),
  failAfterChunks: options?.failAfterChunks
})

/**
 * An outcome that fails with `error` after `delay` (default: at once): any `LlmError`, so a test
 * can play a rate limit, a timeout, a 5xx or a refusal exactly as the patterns will see it.
 *
 * @since 0.1.0
 * @category constructors
 */
export const fail = (error: LlmError.LlmError, options?: { readonly delay?: Duration.Input }): Outcome => ({
  _tag: "Fail",
  error,
  delay: Duration.fromInputUnsafe(options?.delay ?? Duration.zero)
})

/**
 * An outcome that never answers, until the call is interrupted: a model that hangs, for testing
 * timeouts, deadlines and probes that never return. The call is recorded as `"interrupted"`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const hang: Outcome = { _tag: "Hang" }

/**
 * The recorder of a `TestChatClient`: the calls made so far, in the order they started.
 *
 * @since 0.1.0
 * @category models
 */
export interface Service {
  readonly calls: Effect.Effect<ReadonlyArray<Call>>
  /** The calls made to one model. */
  readonly callsTo: (model: string) => Effect.Effect<ReadonlyArray<Call>>
}

/**
 * The service tag of the recorder that `TestChatClient.layer` provides beside its `ChatClient`:
 * `calls` and `callsTo` read it, to assert on what the patterns asked for and when.
 *
 * @since 0.1.0
 * @category services
 */
export class TestChatClient
  extends Context.Service<TestChatClient, Service>()("@resilient-llm/testing/TestChatClient")
{}

/**
 * Every call recorded by the `TestChatClient` in context.
 *
 * @since 0.1.0
 * @category accessors
 */
export const calls: Effect.Effect<ReadonlyArray<Call>, never, TestChatClient> = TestChatClient.use((recorder) =>
  recorder.calls
)

/**
 * The calls to one model recorded by the `TestChatClient` in context.
 *
 * @since 0.1.0
 * @category accessors
 */
export const callsTo = (model: string): Effect.Effect<ReadonlyArray<Call>, never, TestChatClient> =>
  TestChatClient.use((recorder) => recorder.callsTo(model))

const usageFor = (outcome: Extract<Outcome, { _tag: "Reply" }>): ChatCompletion.Usage =>
  outcome.usage ?? {
    prompt_tokens: 10,
    completion_tokens: outcome.content.split(/\s+/).filter((w) => w.length > 0).length,
    total_tokens: 10 + outcome.content.split(/\s+/).filter((w) => w.length > 0).length
  }

/**
 * Builds the scripted client and its recorder.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = Effect.fnUntraced(function*(
  script: Script
): Effect.fn.Return<readonly [ChatClient.Service, Service]> {
  // Every call's record is a `Ref` of its own, so starting and settling a call costs the same
  // however many calls came before it (some tests make tens of thousands).
  const log = yield* Ref.make<{
    readonly calls: Chunk.Chunk<Ref.Ref<Call>>
    readonly perModel: HashMap.HashMap<string, number>
  }>({ calls: Chunk.empty(), perModel: HashMap.empty() })

  /** Records a call as pending; returns its record and its index among the calls to its model. */
  const start = Effect.fnUntraced(function*(request: ChatCompletion.ChatRequest, kind: Call["kind"]) {
    const startedAt = yield* Clock.currentTimeMillis
    const call = yield* Ref.make<Call>({
      model: request.model,
      request,
      kind,
      startedAt,
      endedAt: undefined,
      result: "pending",
      error: undefined
    })
    const index = yield* Ref.modify(log, ({ calls, perModel }) => {
      const index = Option.getOrElse(HashMap.get(perModel, request.model), () => 0)
      return [index, {
        calls: Chunk.append(calls, call),
        perModel: HashMap.set(perModel, request.model, index + 1)
      }]
    })
    return [call, index] as const
  })

  const outcomeOf = (
    request: ChatCompletion.ChatRequest,
    index: number
  ): Effect.Effect<Outcome, LlmError.LlmError> => {
    const modelScript = Object.prototype.hasOwnProperty.call(script, request.model)
      ? script[request.model]
      : undefined
    if (modelScript === undefined) {
      return Effect.fail(new LlmError.ModelNotFoundError({ model: request.model, detail: "not in the test script" }))
    }
    if (typeof modelScript === "function") return Effect.sync(() => modelScript(index, request))
    if (modelScript.length === 0) {
      return Effect.fail(new LlmError.ModelNotFoundError({ model: request.model, detail: "empty test script" }))
    }
    return Effect.succeed(modelScript[Math.min(index, modelScript.length - 1)])
  }

  const settle = (call: Ref.Ref<Call>) => <A>(exit: Exit.Exit<A, LlmError.LlmError>) =>
    Effect.flatMap(Clock.currentTimeMillis, (endedAt) =>
      Ref.update(call, (recorded): Call => {
        if (Exit.isSuccess(exit)) return { ...recorded, endedAt, result: "success", error: undefined }
        const error = Option.getOrUndefined(Cause.findErrorOption(exit.cause))
        // a defect is a failure without an `LlmError`, not an interruption
        const result = error === undefined && Cause.hasInterruptsOnly(exit.cause) ? "interrupted" : "failure"
        return { ...recorded, endedAt, result, error }
      }))

  const play = (outcome: Outcome, model: string): Effect.Effect<ChatCompletion.ChatCompletion, LlmError.LlmError> => {
    switch (outcome._tag) {
      case "Hang":
        return Effect.never
      case "Fail":
        return Effect.andThen(Effect.sleep(outcome.delay), Effect.fail(outcome.error))
      case "Reply":
        return Effect.as(
          Effect.sleep(outcome.delay),
          ChatCompletion.make({
            model,
            content: outcome.content,
            usage: usageFor(outcome),
            ...(outcome.finishReason === undefined ? {} : { finishReason: outcome.finishReason })
          })
        )
    }
  }

  const streamed = (
    request: ChatCompletion.ChatRequest,
    outcome: Outcome
  ): Stream.Stream<ChatCompletion.ChatCompletionChunk, LlmError.LlmError> => {
    switch (outcome._tag) {
      case "Hang":
        return Stream.never
      case "Fail":
        return Stream.fromEffect(Effect.andThen(Effect.sleep(outcome.delay), Effect.fail(outcome.error)))
      case "Reply": {
        const words = pieces(outcome.content, "word")
        const deltas = words.map((word, i): ChatCompletion.ChatCompletionChunk => ({
          id: "chatcmpl-local",
          model: request.model,
          choices: [{
            index: 0,
            delta: i === 0 ? { role: "assistant", content: word } : { content: word },
            finish_reason: i === words.length - 1 ? outcome.finishReason ?? "stop" : null
          }]
        }))
        const failure = outcome.failAfterChunks
        const played = Stream.fromIterable(failure ? deltas.slice(0, failure.chunks) : deltas).pipe(
          Stream.zipWithIndex,
          Stream.mapEffect(([chunk, i]) =>
            i === 0 ? Effect.succeed(chunk) : Effect.as(Effect.sleep(outcome.chunkDelay), chunk)
          )
        )
        return Stream.concat(
          Stream.fromEffectDrain(Effect.sleep(outcome.delay)),
          failure ? Stream.concat(played, Stream.fail(failure.error)) : played
        )
      }
    }
  }

  const client: ChatClient.Service = {
    create: (request) =>
      Effect.flatMap(start(request, "create"), ([call, index]) =>
        outcomeOf(request, index).pipe(
          Effect.flatMap((outcome) => play(outcome, request.model)),
          Effect.onExit(settle(call))
        )),
    stream: (request) =>
      Stream.unwrap(
        Effect.map(start(request, "stream"), ([call, index]) =>
          Stream.unwrap(Effect.map(outcomeOf(request, index), (outcome) =>
            streamed(request, outcome))).pipe(
              Stream.onExit(settle(call))
            ))
      )
  }

  const calls = Effect.flatMap(Ref.get(log), (recorded) => Effect.forEach(recorded.calls, Ref.get))
  const recorder: Service = {
    calls,
    callsTo: (model) => Effect.map(calls, (all) => all.filter((call) => call.model === model))
  }
  return [client, recorder] as const
})

/**
 * Provides a scripted `ChatClient` and the `TestChatClient` recorder of its calls.
 *
 * Delays are `Effect.sleep`, so under `TestClock` (`it.effect`) a minute-long outage takes no real
 * time: fork the program, move the clock, then join it.
 *
 * @example
 * ```ts
 * import { ChatCompletion, Fallback, LlmError } from "@resilient-llm/core"
 * import { TestChatClient } from "@resilient-llm/testing"
 * import { Effect } from "effect"
 *
 * const ChatTest = TestChatClient.layer({
 *   // the first call fails after 2 s, every later one answers
 *   "gpt-4o": [
 *     TestChatClient.fail(new LlmError.ServerError({ model: "gpt-4o", status: 503 }), { delay: "2 seconds" }),
 *     TestChatClient.reply("fine now")
 *   ],
 *   "claude-sonnet": [TestChatClient.reply("hello", { delay: "200 millis" })],
 *   "o3": (index) => index % 2 === 0 ? TestChatClient.reply("even") : TestChatClient.hang
 * })
 *
 * const program = Effect.gen(function*() {
 *   const served = yield* Fallback.chain(["gpt-4o", "claude-sonnet"])(ChatCompletion.prompt("Hi"))
 *   const calls = yield* TestChatClient.callsTo("gpt-4o") // one call, result "failure"
 *   return { model: served.model, calls: calls.length }
 * }).pipe(Effect.provide(ChatTest))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (script: Script): Layer.Layer<ChatClient.ChatClient | TestChatClient> =>
  Layer.effectContext(
    Effect.map(make(script), ([client, recorder]) =>
      Context.make(ChatClient.ChatClient, client).pipe(Context.add(TestChatClient, recorder)))
  )

/**
 * Collects a stream's chunks into the text they spell, for assertions.
 *
 * @since 0.1.0
 * @category accessors
 */
export const collectText = <E, R>(
  stream: Stream.Stream<ChatCompletion.ChatCompletionChunk, E, R>
): Effect.Effect<string, E, R> =>
  Effect.map(Stream.runCollect(stream), (chunks) => chunks.map(ChatCompletion.chunkText).join(""))
