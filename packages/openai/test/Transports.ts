/**
 * The `HttpClient` layers the README documents, for tests that must hold on every one of them, and
 * a way to move a `TestClock` while real sockets do their work between the steps.
 */
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { Duration, Effect, Fiber, type Layer, Option } from "effect"
import { FetchHttpClient, type HttpClient } from "effect/http"
import { TestClock } from "effect/testing"

export const transports: ReadonlyArray<readonly [name: string, layer: Layer.Layer<HttpClient.HttpClient>]> = [
  ["undici", NodeHttpClient.layerUndici],
  ["node:http", NodeHttpClient.layerNodeHttp],
  ["fetch", FetchHttpClient.layer]
]

/** One turn of the event loop, so that sockets deliver what the other side wrote. */
export const realTick: Effect.Effect<void> = Effect.promise(() => new Promise<void>((resolve) => setImmediate(resolve)))

/**
 * Moves the `TestClock` by `step` at a time, with real event-loop turns in between, until `fiber`
 * ends or `limit` of virtual time has passed. `None` means the fiber was still running at the
 * limit (it is interrupted): a timeout that should have fired did not.
 */
export const advanceUntilDone = <A, E>(
  fiber: Fiber.Fiber<A, E>,
  options: { readonly step: Duration.Input; readonly limit: Duration.Input }
) =>
  Effect.gen(function*() {
    const steps = Math.ceil(
      Duration.toMillis(Duration.fromInputUnsafe(options.limit)) /
        Duration.toMillis(Duration.fromInputUnsafe(options.step))
    )
    for (let i = 0; i < steps && fiber.pollUnsafe() === undefined; i++) {
      yield* realTick
      yield* realTick
      yield* TestClock.adjust(options.step)
    }
    for (let i = 0; i < 100 && fiber.pollUnsafe() === undefined; i++) yield* realTick
    if (fiber.pollUnsafe() === undefined) {
      yield* Fiber.interrupt(fiber)
      return Option.none<A>()
    }
    return Option.some(yield* Fiber.join(fiber))
  })
