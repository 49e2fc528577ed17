/**
 * The story the demo's fake provider plays: which models it serves, how fast and how reliably
 * each answers, what they say, and how the judge model scores. Everything is a pure function of
 * the request, the call index and the seed, so the same seed tells the same story, whatever
 * order concurrent requests reach the server in.
 *
 * The cast:
 *
 * | model | role | behaviour |
 * | --- | --- | --- |
 * | `gpt-nonexistent` | a typo in a fallback chain | not served: 404 `model_not_found` |
 * | `primary` | first choice of the chains | 40-80 ms; a 503 and three hangs in act 1, an outage in act 2 |
 * | `backup` | the fallback | 80-120 ms, healthy |
 * | `steady` | A/B control | 100-200 ms, 2% of calls fail with 503, middling answers |
 * | `quick` | A/B challenger | 40-100 ms, 10% of calls fail with 503 (flaky), better answers |
 * | `slow` | a best-of-n candidate | 450-650 ms, the most complete answers |
 * | `judge` | the judge | 15-40 ms, replies with a score computed by a fixed rule |
 * | `support-east` | deployment `east` of the logical model `support`, on a second provider | 30-60 ms, healthy |
 * | `support-west` | deployment `west` of `support`, on the first provider | 60-90 ms, healthy |
 *
 * @since 0.1.0
 */
import type { ChatCompletion } from "@resilient-llm/core"
import { FakeProvider } from "@resilient-llm/testing"

/**
 * The seed the story is told with unless another is given.
 *
 * @since 0.1.0
 * @category config
 */
export const defaultSeed = 42

/**
 * The models of the story, by role.
 *
 * @since 0.1.0
 * @category models
 */
export const models = {
  invalid: "gpt-nonexistent",
  primary: "primary",
  backup: "backup",
  control: "steady",
  challenger: "quick",
  slow: "slow",
  judge: "judge",
  eastDeployment: "support-east",
  westDeployment: "support-west"
} as const

/**
 * The logical model of the deployments act, served by `support-east` and `support-west`.
 *
 * @since 0.2.0
 * @category models
 */
export const logicalModel = "support"

/**
 * The question a customer asks in the fallback, breaker and A/B acts. It names none of the key
 * facts the judge looks for, so only the answer can earn points.
 *
 * @since 0.1.0
 * @category prompts
 */
export const orderPrompt = (order: number): string =>
  `A customer writes: "Where is my order #${order}?" Reply in one or two sentences.`

/**
 * The question of the best-of-n act.
 *
 * @since 0.1.0
 * @category prompts
 */
export const breakerPrompt = "Explain in two sentences what a circuit breaker does for an app that calls several LLMs."

/**
 * What the judge looks for in an answer, by topic.
 *
 * @since 0.1.0
 * @category judge
 */
export const keyFacts = {
  order: ["shipped", "tracking", "arrive", "sorry"],
  breaker: ["fail", "skip", "probe", "recover"]
} as const

/**
 * The fake judge's rule, in words, for the report.
 *
 * @since 0.1.0
 * @category judge
 */
export const judgeRule = "2 points per key fact the answer mentions, out of 4 (2 to 10)"

/**
 * The fake judge's rule: 2 points for each key fact of the topic that the text mentions, plus 2,
 * so 2 to 10. The topic is read from the whole judge request (the prompt is in it); the facts are
 * counted in the response when the judge request marks it, else in the whole text (the prompts
 * mention none of the facts, so the result is the same).
 *
 * @since 0.1.0
 * @category judge
 */
export const judgeScore = (judgeRequest: string): number => {
  const topic = /circuit breaker/i.test(judgeRequest) ? keyFacts.breaker : keyFacts.order
  const marked = /<response>([\s\S]*)<\/response>/.exec(judgeRequest)
  const answer = (marked ? marked[1] : judgeRequest).toLowerCase()
  return 2 + 2 * topic.filter((fact) => answer.includes(fact)).length
}

/**
 * The text of a request's last user message.
 *
 * @since 0.1.0
 * @category prompts
 */
export const userText = (request: ChatCompletion.ChatRequest): string => {
  const user = request.messages.filter((message) => message.role === "user").at(-1)
  const content = user?.content
  if (typeof content === "string") return content
  if (!Array.isArray(content)) return ""
  return content.flatMap((part: unknown) =>
    typeof part === "object" && part !== null && "text" in part && typeof part.text === "string" ? [part.text] : []
  ).join("\n")
}

/** A deterministic number in [0, 1) from integers (a 32-bit mix in the style of MurmurHash3's finaliser). */
const chance = (...values: ReadonlyArray<number>): number => {
  let h = 0x9e3779b9
  for (const value of values) {
    h = Math.imul(h ^ (value | 0), 0x85ebca6b)
    h ^= h >>> 13
    h = Math.imul(h, 0xc2b2ae35)
    h ^= h >>> 16
  }
  return (h >>> 0) / 2 ** 32
}

/** How likely each model is to mention each key fact of an order answer. */
const quality: Readonly<Record<string, number>> = {
  [models.primary]: 0.9,
  [models.backup]: 0.7,
  [models.control]: 0.5,
  [models.challenger]: 0.75,
  [models.slow]: 0.95,
  [models.eastDeployment]: 0.8,
  [models.westDeployment]: 0.8
}

const orderAnswer = (model: string, prompt: string, index: number, seed: number): string => {
  const order = /#(\d+)/.exec(prompt)?.[1] ?? "?"
  const p = quality[model] ?? 0.5
  const salt = Array.from(model).reduce((sum, c) => sum * 31 + c.charCodeAt(0), 7)
  const has = (fact: number) => chance(seed, salt, index, fact) < p
  const parts = [has(0) ? `Your order #${order} shipped yesterday` : `I am looking into order #${order}`]
  if (has(1)) parts.push("the tracking link is in your confirmation email")
  if (has(2)) parts.push("it should arrive by Friday")
  return `${parts.join(", ")}.${has(3) ? " Sorry for the wait!" : ""}`
}

const breakerAnswers: Readonly<Record<string, string>> = {
  [models.challenger]: "It stops sending requests to a model that keeps failing.",
  [models.control]:
    "It notices when a model keeps failing and skips it at once, so requests no longer wait for its timeouts.",
  [models.slow]: "It counts each model's failures and, once they pile up, skips that model at once instead of " +
    "waiting for its timeout. After a break it sends a probe request, and when the model has recovered it " +
    "goes back into rotation."
}

/**
 * What a model of the story says to a request.
 *
 * @since 0.1.0
 * @category replies
 */
export const answer =
  (model: string, seed: number) => (request: ChatCompletion.ChatRequest, call: FakeProvider.CallInfo): string => {
    const prompt = userText(request)
    if (/circuit breaker/i.test(prompt)) return breakerAnswers[model] ?? breakerAnswers[models.control]
    return orderAnswer(model, prompt, call.index, seed)
  }

/**
 * How a model of the story behaves when all is well.
 *
 * @since 0.1.0
 * @category behaviours
 */
export const healthy = (model: string, seed: number): FakeProvider.ModelBehaviour => {
  const reply = answer(model, seed)
  switch (model) {
    case models.primary:
      return { latency: { min: "40 millis", max: "80 millis" }, reply }
    case models.backup:
      return { latency: { min: "80 millis", max: "120 millis" }, reply }
    case models.control:
      return {
        latency: { min: "100 millis", max: "200 millis" },
        reply,
        faults: [{ rate: 0.02, fault: FakeProvider.serverError(503) }]
      }
    case models.challenger:
      return {
        latency: { min: "40 millis", max: "100 millis" },
        reply,
        faults: [{ rate: 0.1, fault: FakeProvider.serverError(503) }]
      }
    case models.slow:
      return { latency: { min: "450 millis", max: "650 millis" }, reply }
    case models.eastDeployment:
      return { latency: { min: "30 millis", max: "60 millis" }, reply }
    case models.westDeployment:
      return { latency: { min: "60 millis", max: "90 millis" }, reply }
    default:
      return { latency: "20 millis", reply }
  }
}

/**
 * The judge model: replies with `judgeScore` of the request, as a plain number.
 *
 * @since 0.1.0
 * @category behaviours
 */
export const judge: FakeProvider.ModelBehaviour = {
  latency: { min: "15 millis", max: "40 millis" },
  reply: (request) => String(judgeScore(userText(request)))
}

/**
 * The API key the fake provider demands, so the demo sends one the way a real app does.
 *
 * @since 0.1.0
 * @category config
 */
export const apiKey = "sk-demo-not-a-real-key"

/**
 * The fake provider's configuration. In act 1 the primary answers, then fails with a 503 (retried,
 * and answered), then hangs twice (timed out, and the backup serves), then hangs once more (the
 * hedged request: the backup, started alongside it, serves); afterwards it is healthy until
 * `outage`.
 *
 * @since 0.1.0
 * @category config
 */
export const config = (seed: number): FakeProvider.Config => ({
  seed,
  apiKey,
  models: {
    [models.primary]: {
      ...healthy(models.primary, seed),
      script: [
        FakeProvider.ok,
        FakeProvider.serverError(503),
        FakeProvider.ok,
        FakeProvider.hang(),
        FakeProvider.hang(),
        FakeProvider.hang()
      ]
    },
    [models.backup]: healthy(models.backup, seed),
    [models.control]: healthy(models.control, seed),
    [models.challenger]: healthy(models.challenger, seed),
    [models.slow]: healthy(models.slow, seed),
    [models.judge]: judge,
    [models.westDeployment]: healthy(models.westDeployment, seed)
  }
})

/**
 * The API key of the second provider, which serves the deployments act's `east` deployment.
 *
 * @since 0.2.0
 * @category config
 */
export const secondApiKey = "azure-demo-not-a-real-key"

/**
 * The second provider's configuration: it serves `support-east` only.
 *
 * @since 0.2.0
 * @category config
 */
export const secondConfig = (seed: number): FakeProvider.Config => ({
  seed,
  apiKey: secondApiKey,
  models: { [models.eastDeployment]: healthy(models.eastDeployment, seed) }
})

/**
 * Act 2's outage: every call to the primary hangs until the client gives up.
 *
 * @since 0.1.0
 * @category behaviours
 */
export const outage = (seed: number): FakeProvider.ModelBehaviour => ({
  ...healthy(models.primary, seed),
  script: () => FakeProvider.hang()
})
