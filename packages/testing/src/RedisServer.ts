/**
 * A real `redis-server` for tests: started on `127.0.0.1` and a free port, in a temporary
 * directory of its own, and stopped (its directory removed) when the scope closes. It can be
 * stopped and started again on the same port with its data (an append-only file), and paused
 * (`SIGSTOP`: the socket stays open and nothing answers, as with an overloaded server), so a test
 * can show what the code under test does when Redis is slow, down, or back.
 *
 * It needs the `redis-server` binary on the `PATH` (Debian and Ubuntu: `apt-get install
 * redis-server`; macOS: `brew install redis`); without it, `make` fails with `RedisServerError`
 * saying so.
 *
 * @example
 * ```ts
 * import * as NodeRedis from "@effect/platform-node/NodeRedis"
 * import { RedisServer } from "@resilient-llm/testing"
 * import { Effect, Layer } from "effect"
 *
 * const program = Effect.gen(function*() {
 *   const server = yield* RedisServer.make()
 *   const RedisLive = NodeRedis.layer({ url: server.url })
 *   // ... provide RedisLive to the code under test; `server.pause` makes Redis hang
 * }).pipe(Effect.scoped)
 * ```
 *
 * @since 0.2.0
 */
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import type * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import * as internal from "./internal/redisServer.js"

/**
 * A running `redis-server` and its controls.
 *
 * @since 0.2.0
 * @category models
 */
export interface RedisServer {
  readonly port: number
  /** `redis://127.0.0.1:<port>`, for `NodeRedis.layer({ url })`. */
  readonly url: string
  /** Stops the server (gracefully: its data is written out); connections are refused until `start`. */
  readonly stop: Effect.Effect<void>
  /** Starts it again on the same port, with the data it had when it stopped. */
  readonly start: Effect.Effect<void, RedisServerError>
  /** Freezes the process: connections stay open and no command is answered until `resume`. */
  readonly pause: Effect.Effect<void>
  readonly resume: Effect.Effect<void>
}

/**
 * The server could not be started: the binary is missing, or it did not answer `PING` in time.
 *
 * @since 0.2.0
 * @category errors
 */
export class RedisServerError extends Data.TaggedError("RedisServerError")<{
  readonly reason: string
  readonly cause?: unknown
}> {
  override get message(): string {
    return `redis-server could not be started: ${this.reason}`
  }
}

/**
 * Starts a `redis-server` for the life of the scope.
 *
 * @since 0.2.0
 * @category constructors
 */
export const make: () => Effect.Effect<RedisServer, RedisServerError, Scope.Scope> = internal.make

/**
 * The server as a service, for `it.layer` and `Layer.provide`.
 *
 * @since 0.2.0
 * @category services
 */
export class Server extends Context.Service<Server, RedisServer>()("@resilient-llm/testing/RedisServer") {}

/**
 * A layer that starts a server when built and stops it when released.
 *
 * @since 0.2.0
 * @category layers
 */
export const layer: Layer.Layer<Server, RedisServerError> = Layer.effect(Server, internal.make())
