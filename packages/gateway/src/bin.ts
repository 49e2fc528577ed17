/**
 * `resilient-llm-gateway --config gateway.yaml` (in this repository, `pnpm gateway --config
 * gateway.yaml`): starts the gateway and runs it until SIGINT or SIGTERM, then drains the requests
 * in flight (up to `server.shutdownTimeout`) and exits. `--check` only reads and checks the file.
 * Exit codes: 0 stopped or checked, 1 the configuration is invalid or the gateway cannot start,
 * 2 bad arguments.
 *
 * @since 0.1.0
 */
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FileSystem from "effect/FileSystem"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import { parseArgs } from "node:util"
import * as Gateway from "./Gateway.js"
import * as GatewayConfig from "./GatewayConfig.js"

const usage = `Usage: resilient-llm-gateway --config <file> [--host <host>] [--port <port>] [--check]

An OpenAI-compatible gateway that runs fallback chains, A/B experiments and best-of-n for the
virtual models of its configuration file (YAML or JSON). Point any OpenAI client at
http://<host>:<port>/v1 with a gateway key.

  --config <file>   the configuration (required); changes to it are applied while running
  --host <host>     overrides server.host (default 127.0.0.1)
  --port <port>     overrides server.port (default 8787; 0 picks a free port)
  --check           read and check the configuration, print what it declares, and exit
  -h, --help        show this
`

const write = (stream: NodeJS.WriteStream, text: string) => Effect.sync(() => void stream.write(text))

class UsageError extends Error {}

const parse = () => {
  try {
    const { values } = parseArgs({
      options: {
        config: { type: "string" },
        host: { type: "string" },
        port: { type: "string" },
        check: { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false }
      }
    })
    if (values.help) return { help: true } as const
    if (values.config === undefined) throw new UsageError("--config <file> is required")
    const port = values.port === undefined ? undefined : Number(values.port)
    if (port !== undefined && !(Number.isInteger(port) && port >= 0 && port <= 65535)) {
      throw new UsageError(`--port must be a whole number from 0 to 65535, got ${values.port}`)
    }
    return { help: false, config: values.config, host: values.host, port, check: values.check } as const
  } catch (error) {
    throw error instanceof UsageError ? error : new UsageError(error instanceof Error ? error.message : String(error))
  }
}

const program = Effect.gen(function*() {
  const args = yield* Effect.try({
    try: parse,
    catch: (error) => error instanceof UsageError ? error : new UsageError(String(error))
  })
  if (args.help) return yield* write(process.stdout, usage)
  if (args.check) {
    const fs = yield* FileSystem.FileSystem
    const text = yield* fs.readFileString(args.config)
    const config = yield* GatewayConfig.parse(text, { source: args.config })
    const logical = GatewayConfig.logicalModelsOf(config)
    return yield* write(
      process.stdout,
      `${args.config} is valid: ${Object.keys(config.providers).length} provider(s); logical models: ${
        logical.map((m) => `${m.name} (${m.deployments.map((d) => d.name).join(", ")})`).join(", ")
      }; virtual models: ${Object.keys(config.models).join(", ")}; ${config.keys?.length ?? 0} key(s)\n`
    )
  }
  const gateway = yield* Gateway.make({
    path: args.config,
    ...(args.host === undefined ? {} : { host: args.host }),
    ...(args.port === undefined ? {} : { port: args.port })
  })
  yield* write(process.stderr, `resilient-llm gateway on ${gateway.url} (OpenAI base URL ${gateway.url}/v1)\n`)
  return yield* Effect.never
}).pipe(
  Effect.scoped,
  Effect.provide(Layer.mergeAll(
    NodeHttpClient.layerUndici,
    NodeFileSystem.layer,
    Logger.layer([Logger.consoleLogFmt]),
    Layer.succeed(Logger.LogToStderr, true)
  ))
)

NodeRuntime.runMain(
  program.pipe(
    Effect.tapCause((cause) => {
      const failure = Cause.findErrorOption(cause)
      if (failure._tag === "Some") {
        const error = failure.value
        return write(
          process.stderr,
          error instanceof UsageError ? `error: ${error.message}\n\n${usage}` : `${error.message}\n`
        )
      }
      return Cause.hasInterruptsOnly(cause) ? Effect.void : write(process.stderr, `${Cause.pretty(cause)}\n`)
    })
  ),
  {
    disableErrorReporting: true,
    teardown: (exit, onExit) => {
      if (Exit.isSuccess(exit) || Cause.hasInterruptsOnly(exit.cause)) return onExit(0)
      const failure = Cause.findErrorOption(exit.cause)
      onExit(failure._tag === "Some" && failure.value instanceof UsageError ? 2 : 1)
    }
  }
)
