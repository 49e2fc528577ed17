import { CircuitBreaker } from "@resilient-llm/core"
import { Duration, Effect, Layer, Stream } from "effect"
import * as HttpBody from "effect/http/HttpBody"
import * as HttpClient from "effect/http/HttpClient"

// a model taken out of rotation (open, isolated) or back in it (closed) is worth a message
export const BreakerAlerts = (webhookUrl: string) =>
  Layer.effectDiscard(Effect.gen(function*() {
    const transitions = yield* CircuitBreaker.subscribe // subscribed when the layer is built
    yield* Stream.fromSubscription(transitions).pipe(
      Stream.filter((t) => t.to !== "half-open"),
      Stream.runForEach((t) =>
        HttpClient.post(webhookUrl, {
          body: HttpBody.jsonUnsafe({
            text: t.to === "closed"
              ? `${t.key} is back in rotation`
              : `${t.key} is out of rotation (${t.reason})`,
            model: t.key,
            state: t.to,
            reason: t.reason,
            at: new Date(t.at).toISOString(),
            nextProbeInMs: t.breakDuration === undefined ? null : Duration.toMillis(t.breakDuration)
          })
        }).pipe(
          Effect.timeout("5 seconds"),
          Effect.catchCause(Effect.logError) // a failed alert is logged; the subscriber goes on
        )
      ),
      Effect.forkScoped
    )
  }))

// BreakerAlerts("https://hooks.example.com/llm").pipe(Layer.provideMerge(BreakerLive), Layer.provide(NodeHttpClient.layerUndici))
