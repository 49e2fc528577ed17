/**
 * The published packages, what `pnpm pack:check` (`check.ts`) and the manifest test
 * (`manifest.test.ts`) both hold them to. No side effects: both import it.
 */

/**
 * The published packages, with the peers each must declare, its own dependencies (what no public
 * type of it mentions, so the app need not share it), the modules of `src/` it does not export,
 * and its commands.
 */
export const published = [
  { dir: "core", name: "@resilient-llm/core", peers: ["effect"], dependencies: [], unexported: [], bin: {} },
  {
    dir: "openai",
    name: "@resilient-llm/openai",
    peers: ["@resilient-llm/core", "effect"],
    dependencies: [],
    unexported: [],
    bin: {}
  },
  {
    dir: "testing",
    name: "@resilient-llm/testing",
    peers: ["@effect/platform-node", "@resilient-llm/core", "effect"],
    dependencies: [],
    unexported: [],
    bin: {}
  },
  {
    dir: "gateway",
    name: "@resilient-llm/gateway",
    peers: ["@effect/platform-node", "@resilient-llm/core", "effect"],
    dependencies: ["@resilient-llm/openai", "@resilient-llm/testing", "redis", "yaml"],
    unexported: ["bin"],
    bin: { "resilient-llm-gateway": "./dist/bin.js" }
  }
] as const
