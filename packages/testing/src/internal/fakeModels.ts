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
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Random from "effect/Random"
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

const freshState = (seed: number, name: string, behaviour: NormalisedBehaviour): ModelState => ({
  behaviour,
  calls: 0,
  // string seeds hash deterministically; one generator per purpose keeps the fault sequence
  // independent of the latency configuration
  faults: Random.make(`${seed}/${name}/faults`),
  latency: Random.make(`${seed}/${name}/latency`)
})

const drawLatency = (random: Random.Random, range: LatencyRange): Effect.Effect<Duration.Duration> =>
  range.minMillis === range.maxMillis
    ? Effect.succeed(Duration.millis(range.minMillis))
    : Effect.map(random.nextRange(range.minMillis, range.maxMillis), Duration.millis)

const drawFault = (
  random: Random.Random,
  faults: ReadonlyArray<FakeProvider.FaultRate>
): Effect.Effect<FakeProvider.Outcome | undefined> =>
  faults.length === 0 ? Effect.succeed(undefined) : Effect.map(random.next, (u) => {
    let cumulative = 0
    for (const { fault, rate } of faults) {
      cumulative += rate
      if (u < cumulative) return fault
    }
    return undefined
  })

/** The script's outcome for this call, if it has one; a throwing or invalid script is a `Left`. */
const scripted = (
  behaviour: NormalisedBehaviour,
  index: number,
  request: ChatCompletion.ChatRequest
): Either.Either<FakeProvider.Outcome | undefined, string> => {
  const script = behaviour.script
  if (script === undefined) return Either.right(undefined)
  if (typeof script !== "function") return Either.right(index < script.length ? script[index] : undefined)
  let outcome: FakeProvider.Outcome | undefined
  try {
    outcome = script(index, request)
  } catch (error) {
    return Either.left(`the script of model ${request.model} threw at call ${index}: ${String(error)}`)
  }
  if (outcome === undefined) return Either.right(undefined)
  return Either.map(validateOutcome(`script(${index})`, outcome), () => outcome)
}

/** @internal */
export const make = (
  seed: number,
  initial: ReadonlyMap<string, NormalisedBehaviour>
): Effect.Effect<ModelTable> =>
  Effect.map(
    SynchronizedRef.make<ReadonlyMap<string, ModelState>>(
      new Map([...initial].map(([name, behaviour]) => [name, freshState(seed, name, behaviour)]))
    ),
    (ref): ModelTable => ({
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
              if (Either.isLeft(fromScript)) {
                return [{ _tag: "Invalid", callIndex, detail: fromScript.left } as const, next] as const
              }
              const outcome: FakeProvider.Outcome = fromScript.right ??
                (yield* drawFault(state.faults, state.behaviour.faults)) ??
                { _tag: "Reply", content: undefined }
              const range = outcome.latency === undefined
                ? Either.right(state.behaviour.latency)
                : latencyOf(outcome.latency)
              if (Either.isLeft(range)) {
                return [{ _tag: "Invalid", callIndex, detail: range.left } as const, next] as const
              }
              const latency = yield* drawLatency(state.latency, range.right)
              const decision: Decision = { _tag: "Play", behaviour: state.behaviour, callIndex, outcome, latency }
              return [decision, next] as const
            })
          }
        ),
      set: (name, behaviour) =>
        SynchronizedRef.update(ref, (models) => {
          const next = new Map(models)
          if (Option.isSome(behaviour)) next.set(name, freshState(seed, name, behaviour.value))
          else next.delete(name)
          return next
        }),
      names: Effect.map(SynchronizedRef.get(ref), (models) => [...models.keys()])
    })
  )
