import { BestOfN, ChatCompletion, Judge } from "@resilient-llm/core"
import { Effect } from "effect"

const answer = BestOfN.complete(ChatCompletion.prompt("Summarise this contract clause: ..."), {
  models: ["gpt-4o", "claude-sonnet", "llama-3.1-70b"], // order breaks ties
  candidateTimeout: "20 seconds", // a candidate still generating after this is interrupted
  judgeTimeout: "10 seconds", // a judgement still running after this is interrupted: judge-failed
  minCandidates: 2, // fewer scored answers than this is a NoCandidatesError
  earlyStop: { targetScore: 9 } // optional: stop paying for the rest once one answer is good enough
}).pipe(
  Effect.tap((report) =>
    Effect.forEach(report.candidates, (c) =>
      Effect.log(c.model, c.status, c.score, c.latencyMs, c.judgeLatencyMs, c.error?.message))
  ),
  Effect.map((report) => report.best.text),
  Effect.provide(Judge.layerLlm({ model: "gpt-4o-mini" })) // plus a ChatClient layer
)
