import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { chromium } from "playwright-core"
import { countColor, decodePng } from "./support/png.js"
import { gatewayKeyHash, post, quiet, start } from "./support/start.js"

// Debian's chromium, as .ci/run installs it; no browser is downloaded.
const executablePath = "/usr/bin/chromium"
const flags = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync"
]

const config = `server:
  history: { interval: 150 millis }
providers:
  local:
    fake:
      seed: 3
      models:
        flaky: { latency: 5 millis, faults: { serverError: 1 } }
        steady: { reply: "steady answer", latency: { min: 10 millis, max: 40 millis } }
        quick: { reply: "quick answer", latency: { min: 2 millis, max: 15 millis } }
        judge: { reply: "6" }
breaker: { consecutiveFailures: 3, breakDuration: 1 minute }
deployments:
  flaky: { provider: local }
  steady: { provider: local, price: { input: 2000, output: 8000 } }
  quick: { provider: local }
  judge: { provider: local }
models:
  chat:
    description: flaky first, then steady
    fallback: [flaky, steady]
  support-ab:
    experiment:
      variants:
        - { name: control, model: steady, weight: 1 }
        - { name: challenger, model: quick, weight: 1 }
  best:
    bestOfN:
      models: [steady, quick]
      judge: { model: judge }
keys:
  - name: test
    sha256: ${gatewayKeyHash}
    models: ["*"]
`

const sleep = (ms: number) => Effect.promise(() => new Promise((resolve) => setTimeout(resolve, ms)))

describe("the status page in a real browser", () => {
  it.live(
    "shows circuits with their history, latency and error-rate charts, and the A/B summary",
    () =>
      quiet(Effect.gen(function*() {
        const gateway = yield* start(config)
        const hi = [{ role: "user", content: "Hi" }]
        // traffic over several history intervals, so the charts have lines
        for (let round = 0; round < 6; round++) {
          yield* Effect.all([
            post(gateway, { model: "chat", messages: hi }),
            post(gateway, { model: "support-ab", messages: hi }),
            post(gateway, { model: "support-ab", messages: hi }),
            post(gateway, { model: "best", messages: hi })
          ], { concurrency: "unbounded" })
          yield* sleep(160)
        }

        const userDataDir = mkdtempSync(join(tmpdir(), "gateway-chromium-"))
        const shot = yield* Effect.acquireUseRelease(
          Effect.promise(() =>
            chromium.launchPersistentContext(userDataDir, {
              executablePath,
              headless: true,
              args: flags,
              viewport: { width: 1280, height: 900 }
            })
          ),
          (browser) =>
            Effect.promise(async () => {
              const page = await browser.newPage()
              const response = await page.goto(`${gateway.url}/status`)
              const text = await page.locator("body").innerText()
              const chat = page.locator("#model-chat")
              const flakyRow = chat.locator("tr", { hasText: "flaky" })
              return {
                status: response?.status(),
                title: await page.title(),
                text,
                flakyState: await flakyRow.locator(".badge").innerText(),
                steadyState: await chat.locator("tr", { hasText: "steady" }).locator(".badge").innerText(),
                charts: await page.locator("figure.chart svg").count(),
                lines: await page.locator("figure.chart polyline").count(),
                strips: await chat.locator("svg.strip rect").count(),
                png: await page.screenshot({ fullPage: true })
              }
            }),
          (browser) =>
            Effect.promise(() => browser.close()).pipe(
              Effect.andThen(Effect.sync(() => rmSync(userDataDir, { recursive: true, force: true })))
            )
        )
        writeFileSync(join(tmpdir(), "gateway-status.png"), shot.png)

        assert.strictEqual(shot.status, 200)
        assert.strictEqual(shot.title, "resilient-llm gateway")
        // the circuits: flaky opened after 3 failures and stays open for a minute; steady is closed
        assert.strictEqual(shot.flakyState, "open")
        assert.strictEqual(shot.steadyState, "closed")
        assert.include(shot.text, "closed → open (consecutive-failures)")
        assert.isAtLeast(shot.strips, 2) // closed, then open
        // the deployments by logical model, each with its provider's model name, calls and cost
        assert.match(shot.text, /flaky\s+weighted · \d+ attempts/)
        assert.include(shot.text, "local/steady")
        assert.match(shot.text, /\d+ requests, [\d.]+% failed, \$\d+\.\d+ spent/)
        // two charts per model, with lines drawn from several points
        assert.strictEqual(shot.charts, 6)
        assert.isAtLeast(shot.lines, 6)
        // the A/B summary
        assert.include(shot.text, "A/B: support-ab")
        assert.match(shot.text, /control \(control\)\s+steady/)
        assert.include(shot.text, "challenger vs control")
        // the screenshot: the open badge and strip in red, closed ones in green, p50 lines in blue
        const image = decodePng(shot.png)
        assert.strictEqual(image.width, 1280)
        assert.isAbove(countColor(image, "#dc2626"), 500)
        assert.isAbove(countColor(image, "#16a34a"), 500)
        assert.isAbove(countColor(image, "#2563eb"), 200)
      })),
    60_000
  )
})
