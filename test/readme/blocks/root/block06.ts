import { HttpBody, HttpClient } from "@effect/platform"
import { CircuitBreaker } from "@resilient-llm/core"
import { Duration, Effect, Layer, Stream } from "effect"

const alert = (t: CircuitBreaker.Transition) =>
  HttpClient.post("https://hooks.example.com/llm-alerts", {
    body: HttpBody.unsafeJson({
      text: `${t.key}: circuit ${t.to} (${t.reason})` +
        (t.breakDuration ? `, next probe in ${Duration.format(t.breakDuration)}` : "")
    })
  }).pipe(Effect.timeout("5 seconds"), Effect.catchAllCause(Effect.logError))

const Alerts = Layer.scopedDiscard(
  CircuitBreaker.changes.pipe(
    Stream.runForEach((t) =>
      t.to === "open" || t.to === "isolated"
        ? Effect.logWarning(`model ${t.key} taken out of rotation`).pipe(
          Effect.annotateLogs({ model: t.key, reason: t.reason }),
          Effect.zipRight(alert(t))
        )
        : t.to === "closed"
        ? Effect.logInfo(`model ${t.key} back in rotation`)
        : Effect.void
    ),
    Effect.forkScoped
  )
)
