/**
 * What a call costs. A `Price` is a deployment's price table in US dollars per million tokens:
 * prompt tokens, the prompt tokens the provider served from its cache, completion tokens, and the
 * reasoning tokens among them. `Cost.of` turns the `usage` a provider reports into dollars, reading
 * the cached and reasoning counts (`usage.prompt_tokens_details.cached_tokens`,
 * `usage.completion_tokens_details.reasoning_tokens`) when the provider sends them and treating
 * them as none when it does not.
 *
 * The deployments router (`Deployments`) prices every call it makes: the cost goes on the call's
 * span (`llm.cost_usd`), its log line (`costUsd`), the `resilient_llm_cost_usd_total` counter, the
 * report of a fallback chain, the summary of an experiment, and the caller's `Budget`.
 *
 * @example
 * ```ts
 * import { Cost } from "@resilient-llm/core"
 *
 * const gpt4o: Cost.Price = { input: 2.5, cachedInput: 1.25, output: 10 }
 * Cost.of(gpt4o, { input: 1_000, cachedInput: 200, output: 500, reasoning: 0 })
 * // 800 × 2.5 + 200 × 1.25 + 500 × 10, per million: 0.00725
 * ```
 *
 * @since 0.2.0
 */
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as ChatCompletion from "./ChatCompletion.js"

// A dollar a token is far above any real price; the bound keeps every cost a finite number.
const UsdPerMillion = Schema.Finite.check(Schema.isBetween({ minimum: 0, maximum: 1_000_000 })).annotate({
  description: "US dollars per million tokens, from 0 to 1,000,000"
})

/**
 * A price table, in US dollars per million tokens. `cachedInput` is what a prompt token read
 * from the provider's cache costs (the input price when absent); `reasoning` what a reasoning
 * token costs (the output price when absent). Every price is a finite number of at least 0.
 *
 * @since 0.2.0
 * @category schemas
 */
export const Price = Schema.Struct({
  input: UsdPerMillion,
  cachedInput: Schema.optionalKey(UsdPerMillion),
  output: UsdPerMillion,
  reasoning: Schema.optionalKey(UsdPerMillion)
})

/**
 * @since 0.2.0
 * @category models
 */
export interface Price extends Schema.Schema.Type<typeof Price> {}

/**
 * The tokens of one call, by how they are priced. `cachedInput` is part of `input`, and
 * `reasoning` part of `output`, as providers report them.
 *
 * @since 0.2.0
 * @category models
 */
export interface Tokens {
  readonly input: number
  readonly cachedInput: number
  readonly output: number
  readonly reasoning: number
}

// A decoded usage holds token counts only; a hand-built one (a test double, a custom client) may
// not, and a count that is not one is read as none.
const countOf = (value: number | null | undefined): number => ChatCompletion.isTokenCount(value) ? value : 0

/**
 * The priced token counts of a completion's (or a chunk's) `usage`, when it has one: the
 * prompt and completion counts, and the cached and reasoning counts among them from the usage's
 * details (`usage.prompt_tokens_details.cached_tokens`,
 * `usage.completion_tokens_details.reasoning_tokens`), none when absent, capped at the counts
 * they are part of.
 *
 * @since 0.2.0
 * @category accessors
 */
export const tokensOf = (
  completion: { readonly usage?: ChatCompletion.Usage | null | undefined }
): Option.Option<Tokens> => {
  const usage = completion.usage
  if (
    usage == null || !ChatCompletion.isTokenCount(usage.prompt_tokens) ||
    !ChatCompletion.isTokenCount(usage.completion_tokens)
  ) {
    return Option.none()
  }
  const input = usage.prompt_tokens
  const output = usage.completion_tokens
  return Option.some({
    input,
    cachedInput: Math.min(input, countOf(usage.prompt_tokens_details?.cached_tokens)),
    output,
    reasoning: Math.min(output, countOf(usage.completion_tokens_details?.reasoning_tokens))
  })
}

/**
 * What `tokens` cost at `price`, in US dollars.
 *
 * @since 0.2.0
 * @category accessors
 */
export const of = (price: Price, tokens: Tokens): number => {
  const cachedInput = Math.min(tokens.cachedInput, tokens.input)
  const reasoning = Math.min(tokens.reasoning, tokens.output)
  return (
    (tokens.input - cachedInput) * price.input +
    cachedInput * (price.cachedInput ?? price.input) +
    (tokens.output - reasoning) * price.output +
    reasoning * (price.reasoning ?? price.output)
  ) / 1_000_000
}

/**
 * What a completion cost at `price`, in US dollars, when the provider reported its usage.
 *
 * @since 0.2.0
 * @category accessors
 */
export const ofCompletion = (
  price: Price,
  completion: { readonly usage?: ChatCompletion.Usage | null | undefined }
): Option.Option<number> => Option.map(tokensOf(completion), (tokens) => of(price, tokens))

/**
 * A dollar amount for a log line or a report: six decimals below a cent, four below a dollar,
 * two above.
 *
 * @since 0.2.0
 * @category accessors
 */
export const format = (usd: number): string => {
  const digits = Math.abs(usd) < 0.01 ? 6 : Math.abs(usd) < 1 ? 4 : 2
  return `$${usd.toFixed(digits)}`
}
