/**
 * Checks request bodies against the official spec's `CreateChatCompletionRequest`. Every test in
 * `test/` that talks to a `FakeProvider` runs `expectConformingRequests` on it (through
 * `Fake.start`, as the server's scope closes), so every body our client sends in these tests is
 * validated, not a sample of them.
 */
import { assert } from "@effect/vitest"
import type { FakeProvider } from "@resilient-llm/testing"
import { Effect } from "effect"
import { validator } from "./openApi.js"

/** The spec's validator for chat requests, compiled once per test file. */
export const requestValidator = Effect.runSync(Effect.cached(validator("CreateChatCompletionRequest")))

/** The validator's complaints about `body`, one line each; empty when it conforms. */
export const requestErrors = (body: unknown): Effect.Effect<ReadonlyArray<string>> =>
  Effect.map(requestValidator, ({ errors }) =>
    body === undefined
      ? ["the body is not JSON"]
      : errors(body).map((unit) => `${unit.instanceLocation || "/"}: ${unit.absoluteKeywordLocation.split("#")[1]}`))

/**
 * Fails the test, naming the body and what is wrong with it, unless every chat request the fake
 * received conforms to `CreateChatCompletionRequest`. Returns how many bodies were checked.
 */
export const expectConformingRequests = (fake: FakeProvider.Service): Effect.Effect<number> =>
  Effect.gen(function*() {
    const received = yield* fake.requests
    for (const request of received) {
      const errors = yield* requestErrors(request.body)
      if (errors.length > 0) {
        assert.fail(
          `request #${request.seq} to ${request.model} does not conform to CreateChatCompletionRequest:\n` +
            `${errors.slice(0, 10).join("\n")}\n${JSON.stringify(request.body)}`
        )
      }
    }
    return received.length
  })
