/**
 * What the published declarations must say: real types, not `any`, and no internal module.
 * Type-checked only (with `main.ts`), under both module resolutions.
 */
import { type ChatClient, ChatCompletion, type Fallback } from "@resilient-llm/core"
import type { Effect } from "effect"
import { complete } from "./chain.js"

export const served: Effect.Effect<
  Fallback.Served<ChatCompletion.ChatCompletion>,
  Fallback.AllModelsFailed,
  ChatClient.ChatClient
> = complete(ChatCompletion.prompt("typed"))

// @ts-expect-error a number is not a request: the declarations are real types
complete(42)

// @ts-expect-error internal modules are not part of the package's exports
import("@resilient-llm/core/internal/experimentStats")
