/**
 * Gateway keys and their budgets. A key is known by the SHA-256 of its text, so the gateway keeps
 * no key in clear after startup and a lookup costs one hash. Budgets count per key over fixed
 * windows of the key's period (from the epoch); they outlive reloads, so editing the file does not
 * hand a spent key a fresh budget.
 *
 * @internal
 */
import { createHash } from "node:crypto"
import type * as GatewayConfig from "../GatewayConfig.js"

/** @internal */
export interface Key {
  readonly name: string
  /** `undefined` means every virtual model. */
  readonly models: ReadonlySet<string> | undefined
  readonly budget: Budget | undefined
}

/** @internal */
export interface Budget {
  readonly requests: number | undefined
  readonly tokens: number | undefined
  readonly periodMs: number
}

/** @internal */
export const sha256 = (text: string): string => createHash("sha256").update(text, "utf8").digest("hex")

/** @internal */
export const makeKey = (config: GatewayConfig.GatewayKey, periodMs: number | undefined): Key => ({
  name: config.name,
  models: config.models.includes("*") ? undefined : new Set(config.models),
  budget: config.budget === undefined || periodMs === undefined
    ? undefined
    : { requests: config.budget.requests, tokens: config.budget.tokens, periodMs }
})

/** @internal */
export const allows = (key: Key, model: string): boolean => key.models === undefined || key.models.has(model)

/**
 * The bearer token of an `Authorization` header (also accepted: `api-key`, as Azure clients send
 * it, and `x-api-key`).
 *
 * @internal
 */
export const tokenOf = (headers: Readonly<Record<string, string | undefined>>): string | undefined => {
  const authorization = headers["authorization"]
  if (authorization !== undefined) {
    const match = /^Bearer\s+(.+)$/i.exec(authorization.trim())
    return match === null ? "" : match[1].trim()
  }
  return headers["api-key"] ?? headers["x-api-key"]
}

interface Usage {
  window: number
  requests: number
  tokens: number
}

/** @internal */
export type Refusal = { readonly what: "requests" | "tokens"; readonly resetInMs: number }

/** Per-key usage in the current window. */
export class Budgets {
  private readonly usage = new Map<string, Usage>()

  private current(key: string, budget: Budget, now: number): Usage {
    const window = Math.floor(now / budget.periodMs)
    let usage = this.usage.get(key)
    if (usage === undefined || usage.window !== window) {
      usage = { window, requests: 0, tokens: 0 }
      this.usage.set(key, usage)
    }
    return usage
  }

  /** Counts a request against the key's budget, or says why it is refused (nothing is counted then). */
  admit(key: Key, now: number): Refusal | undefined {
    const budget = key.budget
    if (budget === undefined) return undefined
    const usage = this.current(key.name, budget, now)
    const resetInMs = (usage.window + 1) * budget.periodMs - now
    if (budget.tokens !== undefined && usage.tokens >= budget.tokens) return { what: "tokens", resetInMs }
    if (budget.requests !== undefined && usage.requests >= budget.requests) return { what: "requests", resetInMs }
    usage.requests++
    return undefined
  }

  /** Adds the tokens a request used, as the provider reported them. */
  charge(key: Key, tokens: number, now: number): void {
    const budget = key.budget
    if (budget === undefined || !(tokens > 0)) return
    this.current(key.name, budget, now).tokens += tokens
  }

  usageOf(key: string): { readonly requests: number; readonly tokens: number } | undefined {
    const usage = this.usage.get(key)
    return usage === undefined ? undefined : { requests: usage.requests, tokens: usage.tokens }
  }
}
