/**
 * The fake's models and the decision of what each call plays. A decision (the call's index, the
 * script or random draw, the latency draw) is taken atomically per call, so calls to a model
 * consume its seeded generators in the order they arrive and the same seed replays the same
 * sequence of outcomes.
 *
 * @internal
 */
import type * as ChatCompletion from "@resilient-llm/core/ChatCompletion"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Random from "effect/Random"
import * as Result from "effect/Result"
import * as SynchronizedRef from "effect/SynchronizedRef"
import type * as FakeProvider from "../FakeProvider.js"
import type { LatencyRange, NormalisedBehaviour } from "./fakeValidation.js"
import { latencyOf, validateOutcome } from "./fakeValidation.js"

interface ModelState {
  readonly behaviour: NormalisedBehaviour
  readonly calls: number
  readonly faults: Random.Random
  readonly latency: Random.Random
}

/** @internal */
export type Decision =
  | { readonly _tag: "UnknownModel" }
  | { readonly _tag: "Invalid"; readonly callIndex: number; readonly detail: string }
  | {
    readonly _tag: "Play"
    readonly behaviour: NormalisedBehaviour
    readonly callIndex: number
    readonly outcome: FakeProvider.Outcome
    readonly latency: Duration.Duration
  }

/** @internal */
export interface ModelTable {
  readonly decide: (request: ChatCompletion.ChatRequest) => Effect.Effect<Decision>
  readonly set: (name: string, behaviour: Option.Option<NormalisedBehaviour>) => Effect.Effect<void>
  readonly names: Effect.Effect<ReadonlyArray<string>>
}

/** A generator of its own for `seed`: string seeds hash deterministically. */
const seeded = (seed: string): Effect.Effect<Random.Random> => Random.withSeed(Random.Random, seed)

const freshState = Effect.fnUntraced(function*(seed: number, name: string, behaviour: NormalisedBehaviour) {
  return {
    behaviour,
    calls: 0,
    // one generator per purpose keeps the fault sequence independent of the latency configuration
    faults: yield* seeded(`${seed}/${name}/faults`),
    latency: yield* seeded(`${seed}/${name}/latency`)
  } satisfies ModelState
})

const drawLatency = (random: Random.Random, range: LatencyRange): Effect.Effect<Duration.Duration> =>
  range.minMillis === range.maxMillis
    ? Effect.succeed(Duration.millis(range.minMillis))
    : Random.nextBetween(range.minMillis, range.maxMillis).pipe(
      Effect.map(Duration.millis),
      Effect.provideService(Random.Random, random)
    )

const drawFault = (
  random: Random.Random,
  faults: ReadonlyArray<FakeProvider.FaultRate>
): Effect.Effect<FakeProvider.Outcome | undefined> =>
  faults.length === 0 ? Effect.succeed(undefined) : Random.next.pipe(
    Effect.map((u) => {
      let cumulative = 0
      for (const { fault, rate } of faults) {
        cumulative += rate
        if (u < cumulative) return fault
      }
      return undefined
    }),
    Effect.provideService(Random.Random, random)
  )

/** The script's outcome for this call, if it has one; a throwing or invalid script is a failure. */
const scripted = (
  behaviour: NormalisedBehaviour,
  index: number,
  request: ChatCompletion.ChatRequest
): Result.Result<FakeProvider.Outcome | undefined, string> => {
  const script = behaviour.script
  if (script === undefined) return Result.succeed(undefined)
  if (typeof script !== "function") return Result.succeed(index < script.length ? script[index] : undefined)
  let outcome: FakeProvider.Outcome | undefined
  try {
    outcome = script(index, request)
  } catch (error) {
    return Result.fail(`the script of model ${request.model} threw at call ${index}: ${String(error)}`)
  }
  if (outcome === undefined) return Result.succeed(undefined)
  return Result.map(validateOutcome(`script(${index})`, outcome), () => outcome)
}

/** @internal */
export const make = Effect.fnUntraced(function*(
  seed: number,
  initial: ReadonlyMap<string, NormalisedBehaviour>
): Effect.fn.Return<ModelTable> {
  const states = new Map<string, ModelState>()
  for (const [name, behaviour] of initial) states.set(name, yield* freshState(seed, name, behaviour))
  const ref = yield* SynchronizedRef.make<ReadonlyMap<string, ModelState>>(states)
  return {
    decide: (request) =>
      SynchronizedRef.modifyEffect(
        ref,
        (models): Effect.Effect<readonly [Decision, ReadonlyMap<string, ModelState>]> => {
          const state = models.get(request.model)
          if (state === undefined) return Effect.succeed([{ _tag: "UnknownModel" } as const, models] as const)
          const callIndex = state.calls
          const next = new Map(models).set(request.model, { ...state, calls: callIndex + 1 })
          return Effect.gen(function*() {
            const fromScript = scripted(state.behaviour, callIndex, request)
            if (Result.isFailure(fromScript)) {
              return [{ _tag: "Invalid", callIndex, detail: fromScript.failure } as const, next] as const
            }
            const outcome: FakeProvider.Outcome = fromScript.success ??
              (yield* drawFault(state.faults, state.behaviour.faults)) ??
              { _tag: "Reply", content: undefined }
            const range = outcome.latency === undefined
              ? Result.succeed(state.behaviour.latency)
              : latencyOf(outcome.latency)
            if (Result.isFailure(range)) {
              return [{ _tag: "Invalid", callIndex, detail: range.failure } as const, next] as const
            }
            const latency = yield* drawLatency(state.latency, range.success)
            const decision: Decision = { _tag: "Play", behaviour: state.behaviour, callIndex, outcome, latency }
            return [decision, next] as const
          })
        }
      ),
    set: (name, behaviour) =>
      SynchronizedRef.updateEffect(ref, (models) => {
        const next = new Map(models)
        if (Option.isNone(behaviour)) {
          next.delete(name)
          return Effect.succeed(next)
        }
        return Effect.map(freshState(seed, name, behaviour.value), (state) => next.set(name, state))
      }),
    names: Effect.map(SynchronizedRef.get(ref), (models) => [...models.keys()])
  }
})
