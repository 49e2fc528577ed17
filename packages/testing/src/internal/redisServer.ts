/**
 * Starting, stopping and pausing a `redis-server` child process.
 *
 * @internal
 */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import { type ChildProcess, spawn } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import * as Net from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as RedisServer from "../RedisServer.js"

const READY_WITHIN = Duration.seconds(10)
const POLL_EVERY = Duration.millis(20)

/** A port nobody listens on now: the kernel's choice for a socket bound to port 0. */
const freePort = Effect.callback<number, RedisServer.RedisServerError>((resume) => {
  const server = Net.createServer()
  server.once(
    "error",
    (cause) => resume(Effect.fail(new RedisServer.RedisServerError({ reason: "no free port", cause })))
  )
  server.listen(0, "127.0.0.1", () => {
    const address = server.address()
    const port = typeof address === "object" && address !== null ? address.port : 0
    server.close(() => resume(Effect.succeed(port)))
  })
})

const PING_WITHIN = Duration.seconds(1)

/**
 * One `PING` over a fresh connection: true on `+PONG`, false on anything else or no answer within
 * `PING_WITHIN` (by the fiber's `Clock`; giving up interrupts the callback, which closes the socket).
 */
const ping = (port: number) =>
  Effect.callback<boolean>((resume) => {
    const socket = Net.connect({ host: "127.0.0.1", port })
    const done = (answer: boolean) => {
      socket.destroy()
      resume(Effect.succeed(answer))
    }
    socket.once("error", () => done(false))
    socket.once("connect", () => socket.write("PING\r\n"))
    socket.once("data", (data) => done(data.toString("utf8").startsWith("+PONG")))
    return Effect.sync(() => socket.destroy())
  }).pipe(Effect.timeoutOrElse({ duration: PING_WITHIN, orElse: () => Effect.succeed(false) }))

const exited = (child: ChildProcess) =>
  Effect.callback<void>((resume) => {
    if (child.exitCode !== null || child.signalCode !== null) return resume(Effect.void)
    child.once("exit", () => resume(Effect.void))
  })

/** @internal */
export const make = (): Effect.Effect<RedisServer.RedisServer, RedisServer.RedisServerError, Scope.Scope> =>
  Effect.gen(function*() {
    const port = yield* freePort
    const dir = yield* Effect.acquireRelease(
      Effect.sync(() => mkdtempSync(join(tmpdir(), "resilient-llm-redis-"))),
      (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
    )
    let child: ChildProcess | undefined

    const spawnServer = Effect.suspend(() => {
      const process = spawn("redis-server", [
        "--port",
        String(port),
        "--bind",
        "127.0.0.1",
        "--dir",
        dir,
        "--save",
        "",
        // an append-only file, so a server stopped and started again keeps its data (a graceful stop
        // writes it out whole; "everysec" keeps each write off the disk's latency)
        "--appendonly",
        "yes",
        "--appendfsync",
        "everysec",
        "--loglevel",
        "warning",
        "--logfile",
        ""
      ], { stdio: "ignore" })
      child = process
      return Effect.callback<void, RedisServer.RedisServerError>((resume) => {
        process.once("error", (cause) =>
          resume(Effect.fail(
            new RedisServer.RedisServerError({
              reason: "the redis-server binary was not found: install it (apt-get install redis-server, " +
                "brew install redis) so that it is on the PATH",
              cause
            })
          )))
        process.once("spawn", () => resume(Effect.void))
      })
    })

    // On the live clock (the reference's default), whatever the test provides: the server starts
    // in real time, and under a TestClock a virtual wait would never see it ready.
    const waitReady: Effect.Effect<void, RedisServer.RedisServerError> = Effect.gen(function*() {
      const until = (yield* Clock.currentTimeMillis) + Duration.toMillis(READY_WITHIN)
      while ((yield* Clock.currentTimeMillis) < until) {
        if (child === undefined || child.exitCode !== null) break
        if (yield* ping(port)) return
        yield* Effect.sleep(POLL_EVERY)
      }
      return yield* new RedisServer.RedisServerError({
        reason: `it did not answer PING on 127.0.0.1:${port} within ${Duration.format(READY_WITHIN)}`
      })
    }).pipe(Effect.provideService(Clock.Clock, Clock.Clock.defaultValue()))

    const signal = (name: NodeJS.Signals) =>
      Effect.sync(() => {
        if (child !== undefined && child.exitCode === null && child.signalCode === null) child.kill(name)
      })

    const stop = Effect.suspend(() => {
      const running = child
      if (running === undefined) return Effect.void
      child = undefined
      // a paused process only acts on SIGTERM once it runs again
      return Effect.andThen(
        Effect.sync(() => {
          running.kill("SIGCONT")
          running.kill("SIGTERM")
        }),
        exited(running)
      )
    })

    const start = Effect.suspend(() => child === undefined ? Effect.andThen(spawnServer, waitReady) : Effect.void)

    yield* Effect.acquireRelease(start, () => stop)

    const server: RedisServer.RedisServer = {
      port,
      url: `redis://127.0.0.1:${port}`,
      stop,
      start,
      pause: signal("SIGSTOP"),
      resume: signal("SIGCONT")
    }
    return server
  })
