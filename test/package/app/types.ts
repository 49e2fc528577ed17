/**
 * What the published declarations must say: real types, not `any`, and no internal module.
 * Type-checked only (with `main.ts`), under both module resolutions.
 */
import { type ChatClient, ChatCompletion } from "@resilient-llm/core"
import { Effect } from "effect"
import { complete } from "./chain.js"

// what a chain serves, and what it needs, as the declarations say
export const served: Effect.Effect<string, unknown, ChatClient.ChatClient> = complete(
  ChatCompletion.prompt("typed")
).pipe(Effect.map((served) => `${served.model} after ${served.attempts.length}: ${ChatCompletion.text(served.value)}`))

// @ts-expect-error a number is not a request: the declarations are real types
complete(42)

// @ts-expect-error a chain needs a ChatClient: its requirements are typed too
export const noClient: Effect.Effect<unknown, unknown, never> = complete(ChatCompletion.prompt("untyped"))

// @ts-expect-error internal modules are not part of the package's exports
import("@resilient-llm/core/internal/experimentStats")
