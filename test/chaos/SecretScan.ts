/**
 * Looks for API keys in everything a program emits: every log line (formatted by Effect's logfmt
 * and JSON loggers, annotations and causes included), every span (name, attributes, events, and
 * the cause it ended with, as an exporter would record it) and every error text the caller hands
 * it. Each text is scanned as it is produced and then dropped, so a soak of thousands of requests
 * can be watched whole without keeping its output in memory.
 *
 * A leak is the whole key or any 12-character piece of it: a key cut short is still a leak.
 */
import { Cause, type Exit, Logger, Tracer } from "effect"
import { inspect } from "node:util"

const pieceLength = 12

export interface Counts {
  readonly logLines: number
  readonly spans: number
  readonly spanAttributes: number
  readonly errorTexts: number
  /** Span attributes that record an HTTP response header (only when a `TracerHeaderFilter` asks). */
  readonly headerAttributes: number
  /** Where each leak was found, with the text around it masked. */
  readonly leaks: ReadonlyArray<string>
}

export interface SecretScan {
  /** A logger that scans each line instead of printing it. */
  readonly logger: Logger.Logger<unknown, void>
  /** A tracer whose spans are scanned when they end. */
  readonly tracer: Tracer.Tracer
  /** Scans a text the caller got hold of, such as an error's message. */
  readonly scanError: (where: string, text: string) => void
  readonly counts: () => Counts
}

const render = (value: unknown): string =>
  typeof value === "string" ? value : inspect(value, { depth: 8, breakLength: Infinity })

export const make = (secrets: ReadonlyArray<string>): SecretScan => {
  const needles = secrets.flatMap((secret) => {
    const pieces = new Set<string>()
    for (let i = 0; i + pieceLength <= secret.length; i++) pieces.add(secret.slice(i, i + pieceLength))
    return [...pieces]
  })
  let logLines = 0
  let spans = 0
  let spanAttributes = 0
  let headerAttributes = 0
  let errorTexts = 0
  const leaks: Array<string> = []

  const scan = (where: string, text: string): void => {
    for (const needle of needles) {
      if (text.includes(needle)) {
        // never print the key itself, even in the report of its leak
        if (leaks.length < 20) leaks.push(`${where}: ${text.split(needle).join("<KEY PIECE>").slice(0, 300)}`)
        return
      }
    }
  }

  const logger = Logger.make<unknown, void>((options) => {
    logLines++
    scan("log line", Logger.formatLogFmt.log(options))
    scan("log line (json)", Logger.formatJson.log(options))
  })

  // Effect's own span, scanned as it ends; its events are scanned as they are added.
  class ScannedSpan extends Tracer.NativeSpan {
    override end(endTime: bigint, exit: Exit.Exit<unknown, unknown>): void {
      super.end(endTime, exit)
      spans++
      scan(`span ${this.name}`, this.name)
      for (const [key, value] of this.attributes) {
        spanAttributes++
        if (key.startsWith("http.response.header.")) headerAttributes++
        scan(`span ${this.name} attribute ${key}`, `${key}=${render(value)}`)
      }
      if (exit._tag === "Failure") scan(`span ${this.name} exit`, Cause.pretty(exit.cause))
    }
    override event(name: string, startTime: bigint, attributes?: Record<string, unknown>): void {
      super.event(name, startTime, attributes)
      scan(`span ${this.name} event`, `${name} ${render(attributes ?? {})}`)
    }
  }

  const tracer = Tracer.make({ span: (options) => new ScannedSpan(options) })

  return {
    logger,
    tracer,
    scanError: (where, text) => {
      errorTexts++
      scan(where, text)
    },
    counts: () => ({ logLines, spans, spanAttributes, headerAttributes, errorTexts, leaks: [...leaks] })
  }
}

/** Every rendering of an error a program might print, log or serialize. */
export const renderings = (error: unknown): ReadonlyArray<string> => [
  error instanceof Error ? error.message : "",
  String(error),
  JSON.stringify(error) ?? "",
  inspect(error, { depth: 10 }),
  Cause.pretty(Cause.fail(error))
]
