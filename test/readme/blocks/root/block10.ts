import { CircuitBreaker } from "@resilient-llm/core"
import { Duration, Effect, Layer, Stream } from "effect"
import { HttpBody, HttpClient } from "effect/http"

const alert = (t: CircuitBreaker.Transition) =>
  HttpClient.post("https://hooks.example.com/llm-alerts", {
    body: HttpBody.jsonUnsafe({
      text: `${t.key}: circuit ${t.to} (${t.reason})` +
        (t.breakDuration ? `, next probe in ${Duration.format(t.breakDuration)}` : "")
    })
  }).pipe(Effect.timeout("5 seconds"), Effect.catchCause(Effect.logError))

const Alerts = Layer.effectDiscard(
  CircuitBreaker.changes.pipe(
    Stream.runForEach((t) =>
      t.to === "open" || t.to === "isolated"
        ? Effect.logWarning(`model ${t.key} taken out of rotation`).pipe(
          Effect.annotateLogs({ model: t.key, reason: t.reason }),
          Effect.andThen(alert(t))
        )
        : t.to === "closed"
        ? Effect.logInfo(`model ${t.key} back in rotation`)
        : Effect.void
    ),
    Effect.forkScoped
  )
)
