/**
 * The gateway's declarations as a user's app sees them: real types, and neither its command nor
 * its internal modules importable. Type-checked only; the command itself is run by `check.ts`.
 */
import { type Gateway, GatewayConfig } from "@resilient-llm/gateway"
import type { Effect } from "effect"

export const parsed: Effect.Effect<GatewayConfig.Config, GatewayConfig.GatewayConfigError> = GatewayConfig.parse(
  "providers: {}"
)

export const address = (gateway: Gateway.Service): string => `${gateway.url}/v1`

// @ts-expect-error a configuration is text: the declarations are real types
GatewayConfig.parse(42)

// @ts-expect-error the command starts the gateway when loaded: it is a bin, not a module
import("@resilient-llm/gateway/bin")

// @ts-expect-error internal modules are not part of the package's exports
import("@resilient-llm/gateway/internal/config")
