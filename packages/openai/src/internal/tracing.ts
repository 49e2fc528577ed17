/**
 * Secrets kept out of the HTTP client's spans by value, not only by name. Effect records a header
 * as `<redacted>` when its name is on a list, and a query parameter as `REDACTED` likewise; a
 * provider that echoes a key in a header we show (`x-request-id`), or a key in a `baseUrl`'s
 * query, would still put it in a trace verbatim. Effect gives no hook between a value and its
 * span, so the tracer the request runs under is wrapped: its spans scrub the values of the
 * attributes that hold headers and URLs, as error details are scrubbed.
 *
 * @internal
 */
import type * as Redacted from "effect/Redacted"
import type * as Tracer from "effect/Tracer"
import { sanitize } from "./errors.js"

const scrubbedKey = (key: string): boolean =>
  key.startsWith("http.response.header.") || key.startsWith("http.request.header.") ||
  key === "url.full" || key === "url.query" || key === "url.path"

/**
 * Wraps tracers so that their spans scrub `secrets` (and every token sharing 8 characters with
 * one) out of `http.request.header.*`, `http.response.header.*`, `url.full`, `url.query` and
 * `url.path`. The wrapped tracer of each tracer is built once.
 *
 * A span is handed out behind a `Proxy` rather than a wrapper object, so that it stays what its
 * tracer made (the OpenTelemetry tracer recognises its own spans with `instanceof` to keep the
 * active context); its methods run on the span itself.
 *
 * @internal
 */
export const scrubbingTracer = (
  secrets: ReadonlyArray<Redacted.Redacted<string>>
): (tracer: Tracer.Tracer) => Tracer.Tracer => {
  // Every request of an endpoint records the same URL, and often the same header values: the
  // scrubbed text of the latest values is kept rather than scanned again.
  const scrubbed = new Map<string, string>()
  const scrub = (key: string, value: unknown): unknown => {
    if (typeof value !== "string" || !scrubbedKey(key)) return value
    let clean = scrubbed.get(value)
    if (clean === undefined) {
      clean = sanitize(value, secrets, Number.POSITIVE_INFINITY)
      if (scrubbed.size >= 256) scrubbed.clear()
      scrubbed.set(value, clean)
    }
    return clean
  }
  const handler: ProxyHandler<Tracer.Span> = {
    get(span, property) {
      if (property === "attribute") {
        return (key: string, value: unknown) => span.attribute(key, scrub(key, value))
      }
      const value: unknown = Reflect.get(span, property)
      return typeof value === "function" ? value.bind(span) : value
    }
  }
  const wrapped = new WeakMap<Tracer.Tracer, Tracer.Tracer>()
  return (tracer) => {
    let scrubbing = wrapped.get(tracer)
    if (scrubbing === undefined) {
      scrubbing = {
        span: (options) => new Proxy(tracer.span(options), handler),
        context: tracer.context
      }
      wrapped.set(tracer, scrubbing)
    }
    return scrubbing
  }
}
