import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["packages/*/test/**/*.test.ts", "test/**/*.test.ts", "bench/test/**/*.test.ts"],
    exclude: ["**/node_modules/**", "**/build/**", "**/dist/**"],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Two files at a time on a 2-core machine (the default would be one): most of the slow files
    // wait on sockets and timers (the chaos suite, the demo's tour, FakeProvider), not the CPU.
    // Worker threads start faster and cost less than the default child processes, and a worker
    // keeps its modules from one file to the next (isolate: false): every file imports effect and
    // the packages, and evaluating them afresh for each of 46 files was a third of the run's CPU.
    // The tests keep no state in modules (metric registries, loggers and servers are per test).
    pool: "threads",
    isolate: false,
    maxWorkers: 2,
    sequence: { concurrent: false }
  }
})
