/**
 * `pnpm demo`: reads the flags, runs the tour (against the built-in fake provider, or a real
 * endpoint with `--models`), shows it as it happens, and prints the report for a person, or as
 * JSON with `--json`. Exit codes: 0 done, 1 the tour failed, 2 bad arguments, 130 interrupted.
 *
 * @since 0.1.0
 */
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as Predicate from "effect/Predicate"
import * as References from "effect/References"
import * as Cli from "./Cli.js"
import * as Output from "./Output.js"
import * as Render from "./Render.js"
import * as Shared from "./Shared.js"
import * as Tour from "./Tour.js"

// A reader that goes away (`pnpm demo | head`) is not an error of the demo.
for (const stream of [process.stdout, process.stderr]) {
  stream.on("error", (error: NodeJS.ErrnoException) => {
    if (error.code === "EPIPE") process.exit(0)
    throw error
  })
}

const write = (stream: NodeJS.WriteStream, text: string) => Effect.sync(() => void stream.write(text))

const program = Effect.gen(function*() {
  const options = yield* Effect.fromResult(Cli.parse(process.argv.slice(2)))
  if (options.help) return yield* write(process.stdout, Cli.help)

  // The human report goes to stdout; with --json, stdout holds only the JSON and progress goes to stderr.
  const stream = options.json ? process.stderr : process.stdout
  const style = Render.style(Render.colorEnabled(stream.isTTY === true, process.env))
  const output = yield* Output.make({
    write: (text) => void stream.write(text),
    // log lines on stderr would tear a status line redrawn on the same terminal
    live: stream.isTTY === true && !options.verbose,
    full: !options.json,
    style,
    columns: () => stream.columns || 80
  })
  if (options.models === undefined && process.env["OPENAI_BASE_URL"] !== undefined) {
    yield* output.lines([style.dim("(OPENAI_BASE_URL is set; add --models a,b to run the tour against it)"), ""])
  }

  // The library logs every attempt; keep those lines out of the report unless asked for.
  const logging = options.verbose
    ? Layer.merge(
      Logger.layer([Logger.consolePretty({ colors: Render.colorEnabled(process.stderr.isTTY === true, process.env) })]),
      Layer.succeed(Logger.LogToStderr, true)
    )
    : Layer.succeed(References.MinimumLogLevel, "None")
  const tour = options.models === undefined
    ? Tour.fake({ seed: options.seed, requests: options.requests, onEvent: output.event })
    : Tour.live({ models: options.models, judge: options.judge, requests: options.requests, onEvent: output.event })
  const report = yield* tour.pipe(Effect.provide(logging))
  const shared = options.redis === undefined
    ? undefined
    : yield* Shared.run(options.redis).pipe(Effect.provide(logging))

  if (options.json) {
    yield* write(process.stdout, `${JSON.stringify(shared === undefined ? report : { ...report, shared }, null, 2)}\n`)
  } else {
    yield* output.lines([
      ...(shared === undefined ? [] : Shared.render(shared, style)),
      ...Render.metrics(report.metrics, style),
      ...Render.finished(report, style)
    ])
  }
}).pipe(Effect.scoped, Effect.provide(NodeHttpClient.layerUndici))

const main = program.pipe(
  Effect.tapCause((cause) => {
    const failure = Cause.findErrorOption(cause)
    if (failure._tag === "Some") {
      const error = failure.value
      return write(
        process.stderr,
        error._tag === "UsageError"
          ? `error: ${error.message}\nRun with --help for the options.\n`
          : `The demo failed: ${error.message}\n`
      )
    }
    return Cause.hasInterruptsOnly(cause) ? Effect.void : write(process.stderr, `${Cause.pretty(cause)}\n`)
  })
)

NodeRuntime.runMain(main, {
  disableErrorReporting: true,
  teardown: (exit, onExit) => {
    if (Exit.isSuccess(exit)) return onExit(0)
    if (Cause.hasInterruptsOnly(exit.cause)) return onExit(130)
    const failure = Cause.findErrorOption(exit.cause)
    onExit(failure._tag === "Some" && Predicate.isTagged(failure.value, "UsageError") ? 2 : 1)
  }
})
