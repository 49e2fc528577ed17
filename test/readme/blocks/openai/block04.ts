import { Effect } from "effect"
import { HttpClient } from "effect/http"

// record every header on client spans; keys and unknown headers still show as <redacted>
const withHeaderSpans = Effect.provideService(HttpClient.TracerHeaderFilter, () => true)
