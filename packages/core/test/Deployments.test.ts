import { assert, describe, it } from "@effect/vitest"
import {
  Budget,
  ChatClient,
  ChatCompletion,
  CircuitBreaker,
  Deployments,
  Fallback,
  LlmError
} from "@resilient-llm/core"
import { TestChatClient, TestLogs, TestSpans } from "@resilient-llm/testing"
import { Duration, Effect, Fiber, Layer, Metric, Option, Random, Stream } from "effect"
import { TestClock } from "effect/testing"

const request = ChatCompletion.prompt("Name a prime.", { max_tokens: 50 })
const forModel = (model: string) => ChatCompletion.withModel(request, model)

const reply = (content: string, delay: Duration.Input = "100 millis", usage?: ChatCompletion.Usage) =>
  TestChatClient.reply(content, { delay, ...(usage === undefined ? {} : { usage }) })

/** A router over two scripted providers, `azure` and `openai`, each a client of its own. */
const setup = (
  config: Deployments.Config,
  scripts: { readonly azure?: TestChatClient.Script; readonly openai?: TestChatClient.Script },
  options?: Deployments.Options
) =>
  Effect.gen(function*() {
    const [azure, azureCalls] = yield* TestChatClient.make(scripts.azure ?? {})
    const [openai, openaiCalls] = yield* TestChatClient.make(scripts.openai ?? {})
    const router = yield* Deployments.make(config, options).pipe(
      Effect.provide(Layer.mergeAll(Deployments.providers({ azure, openai }), Deployments.layerStoresMemory))
    )
    const client = Layer.succeed(ChatClient.ChatClient, router)
    return { router, client, azureCalls, openaiCalls }
  })

const two = (
  east: Partial<Deployments.Deployment> = {},
  west: Partial<Deployments.Deployment> = {},
  model: Partial<Deployments.Model> = {}
): Deployments.Config => ({
  models: {
    "gpt-4o": {
      strategy: "weighted",
      ...model,
      deployments: [
        { name: "east", provider: "azure", model: "gpt4o-east", ...east },
        { name: "west", provider: "openai", model: "gpt-4o", priority: 1, ...west }
      ]
    }
  }
})

const attempts = (served: { readonly attempts: ReadonlyArray<Fallback.Attempt> }) =>
  served.attempts.map((a) => [a.model, a.deployment, a.outcome === "failure" ? a.error._tag : a.outcome])

const run = <A, E>(effect: Effect.Effect<A, E, ChatClient.ChatClient>, client: Layer.Layer<ChatClient.ChatClient>) =>
  Effect.gen(function*() {
    const fiber = yield* Effect.forkChild(Effect.provide(effect, client))
    yield* TestClock.adjust("2 seconds")
    return yield* Fiber.join(fiber)
  })

describe("Deployments: one logical model, several deployments", () => {
  it.effect("sends each deployment's own model name to its own provider, and names both in the report", () =>
    Effect.gen(function*() {
      const { azureCalls, client, openaiCalls } = yield* setup(two({ weight: 1 }, { priority: 0, weight: 0 }), {
        azure: { "gpt4o-east": [reply("seven")] },
        openai: { "gpt-4o": [reply("eleven")] }
      })
      const served = yield* run(Fallback.chain(["gpt-4o"])(request), client)
      assert.strictEqual(ChatCompletion.text(served.value), "seven")
      assert.deepStrictEqual([served.model, served.deployment], ["gpt-4o", "east"])
      assert.deepStrictEqual(attempts(served), [["gpt-4o", "east", "success"]])
      assert.deepStrictEqual((yield* azureCalls.calls).map((c) => c.model), ["gpt4o-east"])
      assert.strictEqual((yield* openaiCalls.calls).length, 0)
    }))

  it.effect("a deployment at its rate limit spills over to the next, and the report says so", () =>
    Effect.gen(function*() {
      const { azureCalls, client, openaiCalls } = yield* setup(two({ rpm: 2 }), {
        azure: { "gpt4o-east": [reply("east")] },
        openai: { "gpt-4o": [reply("west")] }
      })
      const chain = Fallback.chain(["gpt-4o"])
      const served: Array<Fallback.Served<ChatCompletion.ChatCompletion>> = []
      for (let i = 0; i < 3; i++) served.push(yield* run(chain(request), client))
      assert.deepStrictEqual(served.map((s) => s.deployment), ["east", "east", "west"])
      assert.strictEqual((yield* azureCalls.calls).length, 2)
      assert.strictEqual((yield* openaiCalls.calls).length, 1)
      const third = served[2]
      assert.deepStrictEqual(attempts(third), [["gpt-4o", "east", "ThrottledError"], ["gpt-4o", "west", "success"]])
      const refusal = third.attempts[0]
      assert.isTrue(
        refusal.outcome === "failure" && refusal.error._tag === "ThrottledError" && refusal.error.limit === "rpm"
      )
    }))

  it.effect("with no deployment free, a call waits up to maxWait for the soonest limit, else fails naming the limit", () =>
    Effect.gen(function*() {
      const patient = yield* setup(two({ rpm: 1 }, { rpm: 1 }, { maxWait: "2 minutes" }), {
        azure: { "gpt4o-east": [reply("east", 0)] },
        openai: { "gpt-4o": [reply("west", 0)] }
      })
      const create = ChatClient.create(forModel("gpt-4o")).pipe(Effect.provide(patient.client))
      yield* create
      yield* create
      const waiting = yield* Effect.forkChild(create)
      yield* TestClock.adjust("59 seconds")
      assert.isUndefined(waiting.pollUnsafe())
      yield* TestClock.adjust("1 second")
      assert.strictEqual(ChatCompletion.text(yield* Fiber.join(waiting)), "east")

      const hasty = yield* setup(two({ rpm: 1 }, { rpm: 1 }, { maxWait: "10 seconds" }), {
        azure: { "gpt4o-east": [reply("east", 0)] },
        openai: { "gpt-4o": [reply("west", 0)] }
      })
      const once = ChatClient.create(forModel("gpt-4o")).pipe(Effect.provide(hasty.client))
      yield* once
      yield* once
      const error = yield* Effect.flip(once)
      assert.instanceOf(error, LlmError.ThrottledError)
      assert.strictEqual(error.limit, "rpm")
      assert.strictEqual(Duration.toMillis(error.retryAfter), 60_000)
    }))

  it.effect("a failing deployment hands the call to the next one; a request error does not", () =>
    Effect.gen(function*() {
      const { client, openaiCalls } = yield* setup(two(), {
        azure: {
          "gpt4o-east": [
            TestChatClient.fail(new LlmError.ServerError({ model: "gpt4o-east", status: 503 }), { delay: "1 second" }),
            TestChatClient.fail(
              new LlmError.BadRequestError({ model: "gpt4o-east", status: 400, code: Option.none() })
            )
          ]
        },
        openai: { "gpt-4o": [reply("west")] }
      })
      const chain = Fallback.chain(["gpt-4o"])
      const served = yield* run(chain(request), client)
      assert.deepStrictEqual(attempts(served), [["gpt-4o", "east", "ServerError"], ["gpt-4o", "west", "success"]])
      assert.deepStrictEqual(served.attempts.map((a) => [a.startedAt, a.durationMs]), [[0, 1000], [1000, 100]])
      const stopped = yield* Effect.flip(run(chain(request), client))
      assert.strictEqual(stopped.reason, "NotFallbackable")
      assert.strictEqual((yield* openaiCalls.calls).length, 1)
      assert.include(stopped.message, "gpt-4o@east: Model gpt4o-east rejected the request with HTTP 400")
    }))

  it.effect("a deployment whose circuit is open is skipped without a call", () =>
    Effect.gen(function*() {
      const { azureCalls, client, router } = yield* setup(two(), {
        azure: { "gpt4o-east": [TestChatClient.fail(new LlmError.ServerError({ model: "gpt4o-east", status: 500 }))] },
        openai: { "gpt-4o": [reply("west")] }
      }, { breaker: { trip: CircuitBreaker.consecutiveFailures(2), breakDuration: "30 seconds" } })
      const chain = Fallback.chain(["gpt-4o"])
      yield* run(chain(request), client)
      yield* run(chain(request), client)
      assert.strictEqual(yield* router.breaker!.state("east"), "open")
      const served = yield* run(chain(request), client)
      assert.deepStrictEqual(attempts(served), [["gpt-4o", "east", "CircuitOpenError"], ["gpt-4o", "west", "success"]])
      assert.strictEqual((yield* azureCalls.calls).length, 2)
      const snapshot = yield* router.snapshot
      assert.deepStrictEqual(snapshot.map((d) => [d.deployment, d.circuit]), [["east", "open"], ["west", "closed"]])
    }))

  it.effect("a full bulkhead spills over at once; with a queue and nowhere else to go, the call waits its turn", () =>
    Effect.gen(function*() {
      const { client, openaiCalls } = yield* setup(two({ maxConcurrent: 1 }), {
        azure: { "gpt4o-east": [reply("east", "1 second")] },
        openai: { "gpt-4o": [reply("west", "1 second")] }
      })
      const both = yield* Effect.forkChild(
        Effect.all([ChatClient.create(forModel("gpt-4o")), ChatClient.create(forModel("gpt-4o"))], {
          concurrency: "unbounded"
        }).pipe(Effect.provide(client))
      )
      yield* TestClock.adjust("1 second")
      assert.deepStrictEqual((yield* Fiber.join(both)).map(ChatCompletion.text), ["east", "west"])
      assert.strictEqual((yield* openaiCalls.calls)[0].startedAt, 0)

      const queued = yield* setup(
        {
          models: {
            solo: { deployments: [{ name: "solo", provider: "azure", model: "m", maxConcurrent: 1, maxQueued: 1 }] }
          }
        },
        { azure: { m: [reply("one", "1 second")] } }
      )
      const three = yield* Effect.forkChild(
        Effect.all(
          [0, 1, 2].map(() => Effect.result(ChatClient.create(forModel("solo")))),
          { concurrency: "unbounded" }
        ).pipe(Effect.provide(queued.client))
      )
      yield* TestClock.adjust("2 seconds")
      const results = yield* Fiber.join(three)
      assert.deepStrictEqual(results.map((r) => r._tag), ["Success", "Success", "Failure"])
      const refused = results[2]
      assert.isTrue(refused._tag === "Failure" && refused.failure._tag === "BulkheadFullError")
      // the queued call started when the first one ended, a second later
      assert.deepStrictEqual((yield* queued.azureCalls.calls).map((c) => c.startedAt), [1000, 2000])
    }))

  it.effect("a 429 cools the deployment down (the calls go elsewhere), lowers its rate, and successes raise it", () =>
    Effect.gen(function*() {
      const { client, router } = yield* setup(two({ rpm: 100 }), {
        azure: {
          "gpt4o-east": (index) =>
            index === 0
              ? TestChatClient.fail(
                new LlmError.RateLimitError({ model: "gpt4o-east", retryAfter: Option.some(Duration.seconds(5)) })
              )
              : reply("east", 0)
        },
        openai: { "gpt-4o": [reply("west", 0)] }
      })
      const create = ChatClient.create(forModel("gpt-4o")).pipe(Effect.provide(client))
      assert.strictEqual(ChatCompletion.text(yield* create), "west") // the 429 failed over
      assert.strictEqual(ChatCompletion.text(yield* create), "west") // cooling down: skipped
      const east = () => Effect.map(router.snapshot, (all) => all[0].limits)
      assert.deepStrictEqual(yield* east(), { factor: 0.5, rpm: 50, tpm: undefined, cooldownMs: 5000 })
      yield* TestClock.adjust("5 seconds")
      assert.strictEqual(ChatCompletion.text(yield* create), "east")
      for (let i = 0; i < 10; i++) yield* create
      assert.deepStrictEqual(yield* east(), { factor: 1, rpm: 100, tpm: undefined, cooldownMs: 0 })
    }))

  it.effect("tokens are estimated before the call and corrected from the usage after it", () =>
    Effect.gen(function*() {
      const { azureCalls, router } = yield* setup(
        { models: { m: { deployments: [{ name: "solo", provider: "azure", model: "m", tpm: 1000 }] } } },
        { azure: { m: [reply("long", 0, { prompt_tokens: 100, completion_tokens: 890 })] } }
      )
      const small = ChatCompletion.withModel(ChatCompletion.prompt("hi", { max_tokens: 50 }), "m")
      // 55 tokens are estimated (5 of prompt, 50 of max_tokens), 990 are used: 10 are left, and the
      // next call's 55 do not fit
      yield* router.create(small)
      const error = yield* Effect.flip(router.create(small))
      assert.isTrue(error._tag === "ThrottledError" && error.limit === "tpm")
      assert.strictEqual((yield* azureCalls.calls).length, 1)
      // a token comes back every 60 ms: 45 more in 2.7 s
      yield* TestClock.adjust("3 seconds")
      yield* router.create(small)
    }))

  it.effect("an unknown logical model is ModelNotFoundError, and nothing is sent", () =>
    Effect.gen(function*() {
      const { azureCalls, client } = yield* setup(two(), { azure: {} })
      const error = yield* Effect.flip(ChatClient.create(forModel("gpt-5")).pipe(Effect.provide(client)))
      assert.instanceOf(error, LlmError.ModelNotFoundError)
      assert.include(error.message, "no deployments serve it (models: gpt-4o)")
      assert.strictEqual((yield* azureCalls.calls).length, 0)
    }))

  it.effect("streams through the chosen deployment, failing over before the first chunk", () =>
    Effect.gen(function*() {
      const { client } = yield* setup(two(), {
        azure: { "gpt4o-east": [TestChatClient.fail(new LlmError.ServerError({ model: "gpt4o-east", status: 502 }))] },
        openai: { "gpt-4o": [TestChatClient.reply("two three five")] }
      })
      const text = yield* TestChatClient.collectText(ChatClient.stream(forModel("gpt-4o"))).pipe(Effect.provide(client))
      assert.strictEqual(text, "two three five")
      const served = yield* Fallback.stream(["gpt-4o"])(request).pipe(Effect.provide(client), Effect.scoped)
      assert.deepStrictEqual(attempts(served), [["gpt-4o", "east", "ServerError"], ["gpt-4o", "west", "success"]])
    }))
})

describe("Deployments: routing strategies", () => {
  it.effect("weighted: traffic in proportion to the weights, the same for the same seed", () =>
    Effect.gen(function*() {
      const { router } = yield* setup(two({ weight: 3 }, { weight: 1, priority: 0 }), {
        azure: { "gpt4o-east": [reply("east", 0)] },
        openai: { "gpt-4o": [reply("west", 0)] }
      })
      const draw = Effect.forEach(Array.from({ length: 400 }), () => router.create(forModel("gpt-4o")))
      const first = (yield* draw.pipe(Random.withSeed(7))).map(ChatCompletion.text)
      const east = first.filter((t) => t === "east").length
      assert.isTrue(east > 260 && east < 340, `east served ${east} of 400`)
      const again = (yield* draw.pipe(Random.withSeed(7))).map(ChatCompletion.text)
      assert.deepStrictEqual(again, first)
    }))

  it.effect("least-busy: the deployment with the fewest calls in flight", () =>
    Effect.gen(function*() {
      const { router } = yield* setup(two({}, { priority: 0 }, { strategy: "least-busy" }), {
        azure: { "gpt4o-east": [reply("east", "1 second")] },
        openai: { "gpt-4o": [reply("west", "1 second")] }
      })
      const fibers = yield* Effect.forEach(
        Array.from({ length: 6 }),
        () => Effect.forkChild(router.create(forModel("gpt-4o")))
      )
      yield* TestClock.adjust("1 second")
      const texts = (yield* Effect.forEach(fibers, Fiber.join)).map(ChatCompletion.text)
      assert.strictEqual(texts.filter((t) => t === "east").length, 3)
    }))

  it.effect("lowest-latency: learns each deployment's latency, then prefers the fastest", () =>
    Effect.gen(function*() {
      const { router } = yield* setup(two({}, { priority: 0 }, { strategy: "lowest-latency" }), {
        azure: { "gpt4o-east": [reply("east", "800 millis")] },
        openai: { "gpt-4o": [reply("west", "200 millis")] }
      })
      const one = Effect.gen(function*() {
        const fiber = yield* Effect.forkChild(router.create(forModel("gpt-4o")))
        yield* TestClock.adjust("1 second")
        return ChatCompletion.text(yield* Fiber.join(fiber))
      })
      const first = [yield* one, yield* one].sort()
      assert.deepStrictEqual(first, ["east", "west"]) // each tried once, to learn it
      for (let i = 0; i < 5; i++) assert.strictEqual(yield* one, "west")
      const latencies = (yield* router.snapshot).map((d) => d.latencyMs)
      assert.deepStrictEqual(latencies, [800, 200])
    }))

  it.effect("cheapest: the lowest price for the request, the dearer one only when the cheap one has no room", () =>
    Effect.gen(function*() {
      const { router } = yield* setup(
        two({ price: { input: 5, output: 15 }, rpm: 10 }, { price: { input: 2.5, output: 10 }, priority: 0, rpm: 1 }, {
          strategy: "cheapest"
        }),
        { azure: { "gpt4o-east": [reply("east", 0)] }, openai: { "gpt-4o": [reply("west", 0)] } }
      )
      const texts = yield* Effect.forEach(
        [0, 1],
        () => Effect.map(router.create(forModel("gpt-4o")), ChatCompletion.text)
      )
      assert.deepStrictEqual(texts, ["west", "east"])
    }))
})

describe("Deployments: cost and budgets", () => {
  const priced = two({ price: { input: 2.5, cachedInput: 1.25, output: 10 } }, { price: { input: 5, output: 15 } })
  const usage = { prompt_tokens: 1000, completion_tokens: 200, total_tokens: 1200 }

  it.effect("prices every call: the attempt, its span and the cost metric by model and deployment", () =>
    Effect.gen(function*() {
      const { client } = yield* setup(priced, {
        azure: { "gpt4o-east": [reply("east", 0, usage)] },
        openai: { "gpt-4o": [reply("west", 0, usage)] }
      })
      const capture = yield* TestSpans.make
      const logs = TestLogs.make()
      const served = yield* run(Fallback.chain(["gpt-4o"])(request), client).pipe(
        Effect.withTracer(capture.tracer),
        Effect.provide(logs.layer)
      )
      // 1000 × 2.5 + 200 × 10, per million
      assert.strictEqual(served.attempts[0].costUsd, 0.0045)
      const deployment = capture.spans.find((s) => s.name === "resilient-llm.deployment")
      assert.deepStrictEqual(
        ["llm.model", "llm.deployment", "llm.provider", "llm.provider_model", "llm.outcome", "llm.cost_usd"].map((k) =>
          deployment?.attributes.get(k)
        ),
        ["gpt-4o", "east", "azure", "gpt4o-east", "success", 0.0045]
      )
      const attempt = capture.spans.find((s) => s.name === "resilient-llm.fallback.attempt")
      assert.deepStrictEqual([attempt?.attributes.get("llm.deployment"), attempt?.attributes.get("llm.cost_usd")], [
        "east",
        0.0045
      ])
      const metrics = yield* Metric.snapshot
      const costMetric = metrics.find((m) =>
        m.id === "resilient_llm_cost_usd_total" && m.attributes?.["deployment"] === "east" &&
        m.attributes?.["model"] === "gpt-4o"
      )
      assert.isTrue(costMetric?.type === "Counter" && costMetric.state.count === 0.0045)
      const requests = metrics.find((m) =>
        m.id === "resilient_llm_deployment_requests_total" && m.attributes?.["deployment"] === "east"
      )
      assert.isTrue(requests?.type === "Counter" && requests.state.count === 1)
      const line = logs.lines.find((l) => l.message === "attempt succeeded")
      assert.deepStrictEqual(
        [line?.annotations["llm.model"], line?.annotations["llm.deployment"], line?.annotations["costUsd"]],
        ["gpt-4o", "east", 0.0045]
      )
    }).pipe(Effect.provideService(Metric.MetricRegistry, new Map())))

  it.effect("cached and reasoning tokens are priced at their own rates when the usage reports them", () =>
    Effect.gen(function*() {
      const detailed = {
        ...usage,
        prompt_tokens_details: { cached_tokens: 800 },
        completion_tokens_details: { reasoning_tokens: 100 }
      }
      const { client } = yield* setup(
        two({ price: { input: 2, cachedInput: 0.5, output: 8, reasoning: 20 } }, { weight: 0 }),
        { azure: { "gpt4o-east": [reply("east", 0, detailed)] } }
      )
      const served = yield* run(Fallback.chain(["gpt-4o"])(request), client)
      // 200 × 2 + 800 × 0.5 + 100 × 8 + 100 × 20, per million
      assert.strictEqual(served.attempts[0].costUsd, 0.0036)
    }))

  it.effect("observeCalls tells of every deployment call as it ends, a stream's when the stream ends", () =>
    Effect.gen(function*() {
      const { client } = yield* setup(priced, {
        azure: {
          "gpt4o-east": [
            TestChatClient.fail(new LlmError.ServerError({ model: "gpt4o-east", status: 503 }), { delay: "10 millis" }),
            reply("east", "30 millis", usage)
          ]
        },
        openai: { "gpt-4o": [reply("west", "20 millis", usage)] }
      })
      const calls: Array<Deployments.CallEnd> = []
      const observe = Deployments.observeCalls((call) => calls.push(call))
      // east fails, the router hands the call to west, which answers
      yield* run(ChatClient.create(forModel("gpt-4o")).pipe(observe), client)
      assert.deepStrictEqual(
        calls.map((c) => [c.model, c.deployment, c.outcome, c.durationMs, c.costUsd]),
        [["gpt-4o", "east", "ServerError", 10, undefined], ["gpt-4o", "west", "success", 20, 0.008]]
      )
      assert.deepStrictEqual(calls[1].tokens, { input: 1000, cachedInput: 0, output: 200, reasoning: 0 })
      // a stream opened by a chain: its call ends after its last chunk, read outside the observed
      // effect, and is still told to that effect's observer
      calls.length = 0
      const opening = yield* Effect.forkChild(
        Fallback.stream(["gpt-4o"])(request).pipe(observe, Effect.provide(client))
      )
      yield* TestClock.adjust("1 second")
      const served = yield* Fiber.join(opening)
      assert.strictEqual(calls.length, 0)
      const reading = yield* Effect.forkChild(TestChatClient.collectText(served.value))
      yield* TestClock.adjust("1 second")
      assert.strictEqual(yield* Fiber.join(reading), "east")
      assert.deepStrictEqual(calls.map((c) => [c.deployment, c.outcome]), [["east", "success"]])
    }))

  it.effect("a key's budget refuses its calls once spent, stops the chain, and leaves other keys alone", () =>
    Effect.gen(function*() {
      const { azureCalls, client, router } = yield* setup({ ...priced, budget: { limitUsd: 0.01, period: "1 day" } }, {
        azure: { "gpt4o-east": [reply("east", 0, usage)] },
        openai: { "gpt-4o": [reply("west", 0, usage)] }
      })
      const chain = Fallback.chain(["gpt-4o", "gpt-4o"])
      for (let i = 0; i < 3; i++) yield* run(chain(request).pipe(Budget.withKey("team-a")), client)
      // three calls at 0.0045 crossed 0.01: the next is refused before any provider is asked
      const refused = yield* Effect.flip(
        run(chain(request).pipe(Budget.withKey("team-a"), Effect.catchTag("FallbackConfigError", Effect.die)), client)
      )
      assert.strictEqual(refused.reason, "NotFallbackable")
      assert.strictEqual(refused.stoppedBy?._tag, "BudgetExceededError")
      assert.deepStrictEqual(refused.untried, ["gpt-4o"])
      assert.strictEqual((yield* azureCalls.calls).length, 3)
      const status = yield* router.budget!.status("team-a")
      assert.isTrue(Math.abs(status.spentUsd - 0.0135) < 1e-12)
      // another key, and calls without a key, are not affected
      yield* run(chain(request).pipe(Budget.withKey("team-b")), client)
      yield* run(chain(request), client)
      // the next day the key may spend again
      yield* TestClock.adjust("1 day")
      yield* run(chain(request).pipe(Budget.withKey("team-a")), client)
    }))
})

describe("Deployments: configuration", () => {
  const cases: ReadonlyArray<readonly [string, unknown, string]> = [
    ["no models", { models: {} }, "no models are configured"],
    ["no deployments", { models: { m: { deployments: [] } } }, "model \"m\": it has no deployments"],
    [
      "no provider",
      { models: { m: { deployments: [{ name: "a", model: "x" }] } } },
      "deployment \"a\" of model \"m\": Missing key"
    ],
    [
      "an unknown provider",
      { models: { m: { deployments: [{ provider: "bedrock", model: "x" }] } } },
      "deployment \"bedrock/x\" of model \"m\": its provider \"bedrock\" is not configured (providers: azure, openai)"
    ],
    [
      "every weight zero",
      { models: { m: { deployments: [{ provider: "azure", model: "x", weight: 0 }] } } },
      "model \"m\": every deployment has weight 0"
    ],
    [
      "a negative price",
      { models: { m: { deployments: [{ provider: "azure", model: "x", price: { input: -1, output: 1 } }] } } },
      "deployment #1 of model \"m\""
    ],
    [
      "a negative weight",
      { models: { m: { deployments: [{ provider: "azure", model: "x", weight: -2 }] } } },
      "deployment #1 of model \"m\""
    ],
    [
      "a fractional rpm",
      { models: { m: { deployments: [{ provider: "azure", model: "x", rpm: 1.5 }] } } },
      "deployment #1 of model \"m\""
    ],
    [
      "a duplicate name",
      {
        models: {
          m: { deployments: [{ provider: "azure", model: "x" }] },
          n: { deployments: [{ provider: "azure", model: "x" }] }
        }
      },
      "deployment \"azure/x\" of model \"n\": the name is taken by a deployment of model \"m\""
    ],
    [
      "cheapest without prices",
      { models: { m: { strategy: "cheapest", deployments: [{ provider: "azure", model: "x" }] } } },
      "the strategy is cheapest, but it has no price"
    ],
    [
      "a queue without a bulkhead",
      { models: { m: { deployments: [{ provider: "azure", model: "x", maxQueued: 3 }] } } },
      "maxQueued needs maxConcurrent"
    ],
    [
      "an unknown strategy",
      { models: { m: { strategy: "fastest", deployments: [{ provider: "azure", model: "x" }] } } },
      "model \"m\""
    ],
    [
      "a negative budget",
      {
        models: { m: { deployments: [{ provider: "azure", model: "x" }] } },
        budget: { limitUsd: -5, period: "1 day" }
      },
      "The deployments are misconfigured"
    ],
    [
      "a bad maxWait",
      { models: { m: { maxWait: "a while", deployments: [{ provider: "azure", model: "x" }] } } },
      "a while"
    ]
  ]

  for (const [what, config, expected] of cases) {
    it.effect(`${what} is a DeploymentsConfigError when the layer is built`, () =>
      Effect.gen(function*() {
        const build = Effect.flatMap(Deployments.decode(config), (decoded) =>
          Layer.build(
            Deployments.layer(decoded).pipe(
              Layer.provide(Layer.mergeAll(
                Deployments.providers({ azure: ChatClientStub, openai: ChatClientStub }),
                Deployments.layerStoresMemory
              ))
            )
          ))
        const error = yield* Effect.flip(build)
        assert.strictEqual(error._tag, "DeploymentsConfigError")
        assert.include(error.message, expected)
      }))
  }
})

const ChatClientStub: ChatClient.Service = {
  create: (request) => Effect.succeed(ChatCompletion.make({ model: request.model, content: "ok" })),
  stream: () => Stream.empty
}
