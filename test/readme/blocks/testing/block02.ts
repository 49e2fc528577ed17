const logs = TestLogs.make()
const served = yield* Fallback.chain(["a", "b"])(request).pipe(Effect.provide(logs.layer))
// logs.lines ends with { level: "INFO", message: "served by b after 2 attempts", annotations: { "llm.model": "b", ... } }
