/**
 * Gateway keys and their budgets. A key is known by the SHA-256 of its text, so the gateway keeps
 * no key in clear after startup and a lookup costs one hash. A key's budgets (US dollars,
 * requests, tokens) are `@resilient-llm/core`'s `Budget`s over the gateway's budget store, one per
 * kind, each under its own store key (`usd:<name>`, `requests:<name>`, `tokens:<name>`): the
 * store outlives reloads, so editing the file does not hand a spent key a fresh budget.
 *
 * @internal
 */
import type * as Budget from "@resilient-llm/core/Budget"
import { createHash } from "node:crypto"
import type * as GatewayConfig from "../GatewayConfig.js"

/** @internal */
export interface Key {
  readonly name: string
  /** `undefined` means every virtual model. */
  readonly models: ReadonlySet<string> | undefined
  readonly budget: Budgets | undefined
}

/** A key's budgets, by kind; `undefined` where the file sets no limit. */
export interface Budgets {
  readonly usd: Budget.Budget | undefined
  readonly requests: Budget.Budget | undefined
  readonly tokens: Budget.Budget | undefined
}

/** The kinds of budget, in the order a request is checked against them. */
export const kinds = ["requests", "tokens", "usd"] as const

/** @internal */
export type Kind = typeof kinds[number]

/** A key's budget of one kind, under its own key in the store. */
export const storeKey = (kind: Kind, name: string): string => `${kind}:${name}`

/** @internal */
export const sha256 = (text: string): string => createHash("sha256").update(text, "utf8").digest("hex")

/** @internal */
export const makeKey = (config: GatewayConfig.GatewayKey, budget: Budgets | undefined): Key => ({
  name: config.name,
  models: config.models.includes("*") ? undefined : new Set(config.models),
  budget
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
