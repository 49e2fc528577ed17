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
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Ref from "effect/Ref"
import * as Stream from "effect/Stream"

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
 * how it ended.
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
 * @since 0.1.0
 * @category constructors
 */
export const reply = (content: string, options?: {
  readonly delay?: Duration.DurationInput
  readonly usage?: ChatCompletion.Usage
  readonly chunkDelay?: Duration.DurationInput
  readonly failAfterChunks?: { readonly chunks: number; readonly error: LlmError.LlmError }
}): Outcome => ({
  _tag: "Reply",
  content,
  delay: Duration.decode(options?.delay ?? Duration.zero),
  usage: options?.usage,
  chunkDelay: Duration.decode(options?.chunkDelay ?? Duration.zero),
  failAfterChunks: options?.failAfterChunks
})

/**
 * @since 0.1.0
 * @category constructors
 */
export const fail = (error: LlmError.LlmError, options?: { readonly delay?: Duration.DurationInput }): Outcome => ({
  _tag: "Fail",
  error,
  delay: Duration.decode(options?.delay ?? Duration.zero)
})

/**
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
 * @since 0.1.0
 * @category tags
 */
export class TestChatClient extends Context.Tag("@resilient-llm/testing/TestChatClient")<TestChatClient, Service>() {}

/**
 * Every call recorded by the `TestChatClient` in context.
 *
 * @since 0.1.0
 * @category accessors
 */
export const calls: Effect.Effect<ReadonlyArray<Call>, never, TestChatClient> = Effect.flatMap(
  TestChatClient,
  (recorder) => recorder.calls
)

/**
 * The calls to one model recorded by the `TestChatClient` in context.
 *
 * @since 0.1.0
 * @category accessors
 */
export const callsTo = (model: string): Effect.Effect<ReadonlyArray<Call>, never, TestChatClient> =>
  Effect.flatMap(TestChatClient, (recorder) => recorder.callsTo(model))

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
export const make = (script: Script): Effect.Effect<readonly [ChatClient.Service, Service]> =>
  Effect.gen(function*() {
    const log = yield* Ref.make<ReadonlyArray<Call>>([])
    const counters = yield* Ref.make<ReadonlyMap<string, number>>(new Map())

    const next = (request: ChatCompletion.ChatRequest) =>
      Effect.gen(function*() {
        const modelScript = Object.prototype.hasOwnProperty.call(script, request.model)
          ? script[request.model]
          : undefined
        if (modelScript === undefined) {
          return yield* new LlmError.ModelNotFoundError({ model: request.model, detail: "not in the test script" })
        }
        const index = yield* Ref.modify(counters, (m) => {
          const i = m.get(request.model) ?? 0
          return [i, new Map(m).set(request.model, i + 1)] as const
        })
        if (typeof modelScript === "function") return modelScript(index, request)
        if (modelScript.length === 0) {
          return yield* new LlmError.ModelNotFoundError({ model: request.model, detail: "empty test script" })
        }
        return modelScript[Math.min(index, modelScript.length - 1)]
      })

    const record = (request: ChatCompletion.ChatRequest, kind: Call["kind"]) =>
      Effect.flatMap(Clock.currentTimeMillis, (startedAt) =>
        Ref.modify(log, (calls) => [calls.length, [...calls, {
          model: request.model,
          request,
          kind,
          startedAt,
          endedAt: undefined,
          result: "pending" as const,
          error: undefined
        }]]))

    const settle = (index: number, result: Call["result"], error?: LlmError.LlmError) =>
      Effect.flatMap(Clock.currentTimeMillis, (endedAt) =>
        Ref.update(log, (calls) =>
          calls.map((call, i) => i === index ? { ...call, endedAt, result, error } : call)))

    const settleExit = (index: number) => <A>(exit: Exit.Exit<A, LlmError.LlmError>) =>
      Exit.match(exit, {
        onSuccess: () =>
          settle(index, "success"),
        onFailure: (cause) =>
          Option.match(Cause.failureOption(cause), {
            onNone: () => settle(index, "interrupted"),
            onSome: (error) => settle(index, "failure", error)
          })
      })

    const play = (outcome: Outcome, model: string): Effect.Effect<ChatCompletion.ChatCompletion, LlmError.LlmError> => {
      switch (outcome._tag) {
        case "Hang":
          return Effect.never
        case "Fail":
          return Effect.zipRight(Effect.sleep(outcome.delay), Effect.fail(outcome.error))
        case "Reply":
          return Effect.as(
            Effect.sleep(outcome.delay),
            ChatCompletion.make({ model, content: outcome.content, usage: usageFor(outcome) })
          )
      }
    }

    const client: ChatClient.Service = {
      create: (request) =>
        Effect.flatMap(record(request, "create"), (index) =>
          Effect.flatMap(next(request), (outcome) =>
            play(outcome, request.model)).pipe(
              Effect.onExit(settleExit(index))
            )),
      stream: (request) =>
        Stream.unwrap(Effect.map(record(request, "stream"), (index) => {
          const chunks = Stream.unwrap(Effect.map(next(request), (outcome) => {
            switch (outcome._tag) {
              case "Hang":
                return Stream.never
              case "Fail":
                return Stream.fromEffect(Effect.zipRight(Effect.sleep(outcome.delay), Effect.fail(outcome.error)))
              case "Reply": {
                const words = outcome.content.split(/(?<=\s)/).filter((w) =>
                  w.length > 0
                )
                const deltas = words.map((word, i): ChatCompletion.ChatCompletionChunk => ({
                  id: "chatcmpl-local",
                  model: request.model,
                  choices: [{
                    index: 0,
                    delta: i === 0 ? { role: "assistant", content: word } : { content: word },
                    finish_reason: i === words.length - 1 ? "stop" : null
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
                  Stream.fromEffect(Effect.sleep(outcome.delay)).pipe(Stream.drain),
                  failure ? Stream.concat(played, Stream.fail(failure.error)) : played
                )
              }
            }
          }))
          return Stream.ensuringWith(chunks, settleExit(index))
        }))
    }

    const recorder: Service = {
      calls: Ref.get(log),
      callsTo: (model) => Effect.map(Ref.get(log), (calls) => calls.filter((call) => call.model === model))
    }
    return [client, recorder] as const
  })

/**
 * Provides a scripted `ChatClient` and the `TestChatClient` recorder of its calls.
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
  Effect.map(Stream.runCollect(stream), (chunks) => Chunk.join(Chunk.map(chunks, ChatCompletion.chunkText), ""))
