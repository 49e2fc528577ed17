/**
 * Where the demo writes while the tour runs. On a terminal, the report's lines scroll by above one
 * status line that is redrawn in place (the act, the A/B progress, the time so far); elsewhere
 * (a pipe, a file, CI) there is no status line, and progress comes as a few plain lines. With
 * `full: false` (for `--json`, whose report goes to stdout at the end) only progress is shown.
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Ref from "effect/Ref"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import * as Render from "./Render.js"
import type * as Tour from "./Tour.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface Output {
  /** Shows one event of the tour. */
  readonly event: (event: Tour.Event) => Effect.Effect<void>
  /** Prints lines (in `full` mode), above the status line. */
  readonly lines: (lines: ReadonlyArray<string>) => Effect.Effect<void>
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  readonly write: (text: string) => void
  /** A terminal: keep a status line redrawn in place. */
  readonly live: boolean
  /** Print the report's lines too, not only progress. */
  readonly full: boolean
  readonly style: Render.Style
  /** The terminal's width. */
  readonly columns: () => number
}

interface Status {
  readonly section: string
  readonly progress: string
  readonly lastQuarter: number
}

const clearLine = "\r\x1b[2K"
const spinner = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"]

const titles: Record<Tour.Section, string> = {
  fallback: "fallback chain",
  breaker: "circuit breaker",
  experiment: "A/B experiment",
  bestOfN: "best-of-n",
  deployments: "deployments"
}

/**
 * An output for the length of the scope; closing it clears the status line.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options): Effect.Effect<Output, never, Scope.Scope> =>
  Effect.gen(function*() {
    const s = options.style
    const start = yield* Clock.currentTimeMillis
    const status = yield* Ref.make<Status>({ section: "starting", progress: "", lastQuarter: 0 })
    const frame = yield* Ref.make(0)

    const statusLine = Effect.gen(function*() {
      const current = yield* Ref.get(status)
      const n = yield* Ref.getAndUpdate(frame, (i) => (i + 1) % spinner.length)
      const elapsed = ((yield* Clock.currentTimeMillis) - start) / 1000
      const text = [current.section, current.progress, `${elapsed.toFixed(1)} s`].filter((part) => part !== "")
        .join(" · ")
      const room = Math.max(10, options.columns() - 3)
      return `${s.cyan(spinner[n])} ${s.dim(text.length > room ? text.slice(0, room) : text)}`
    })
    const redraw = options.live
      ? Effect.flatMap(statusLine, (line) => Effect.sync(() => options.write(clearLine + line)))
      : Effect.void
    const print = (lines: ReadonlyArray<string>) =>
      lines.length === 0 ? Effect.void : options.live
        ? Effect.flatMap(statusLine, (line) =>
          Effect.sync(() => options.write(`${clearLine}${lines.join("\n")}\n${line}`)))
        : Effect.sync(() =>
          options.write(`${lines.join("\n")}\n`)
        )

    if (options.live) {
      yield* Effect.forkScoped(Effect.repeat(redraw, Schedule.spaced("80 millis")))
      yield* Effect.addFinalizer(() => Effect.sync(() => options.write(clearLine)))
    }

    const setSection = (number: number, section: Tour.Section) =>
      Ref.set(status, { section: `${number}/4 ${titles[section]}`, progress: "", lastQuarter: 0 })

    const progress = (done: number, total: number) =>
      Effect.flatMap(
        Ref.modify(status, (current): [boolean, Status] => {
          const quarter = Math.floor((done / total) * 4)
          const next = { ...current, progress: `${done}/${total} requests`, lastQuarter: quarter }
          return [quarter > current.lastQuarter, next]
        }),
        (newQuarter) =>
          options.live ? redraw : newQuarter ? print([s.dim(`   … ${done}/${total} requests`)]) : Effect.void
      )

    const event = (e: Tour.Event): Effect.Effect<void> => {
      switch (e._tag) {
        case "SectionStarted":
          return Effect.andThen(
            setSection(e.number, e.config.section),
            options.full
              ? print(Render.event(e, s))
              : options.live
              ? redraw
              : print([`${e.number}/4 ${titles[e.config.section]}`])
          )
        case "SectionSkipped":
          return Effect.andThen(
            setSection(e.number, e.skipped.section),
            options.full ? print(Render.event(e, s)) : print([`${e.number}/4 ${titles[e.skipped.section]}: skipped`])
          )
        case "Progress":
          return progress(e.done, e.total)
        default:
          return options.full ? print(Render.event(e, s)) : Effect.void
      }
    }

    return { event, lines: (lines) => options.full ? print(lines) : Effect.void }
  })
