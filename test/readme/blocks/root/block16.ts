import { Answer, ChatCompletion, Fallback } from "@resilient-llm/core"
import { Effect, Schema } from "effect"

const Invoice = Schema.Struct({ total: Schema.Number, currency: Schema.String, lines: Schema.Array(Schema.String) })

const extract = Fallback.chain(["gpt-4o-mini", "gpt-4o"], {
  accept: Answer.all([
    Answer.nonEmpty,
    Answer.notTruncated,
    Answer.json(Invoice),
    Answer.predicate((c) => !ChatCompletion.text(c).includes("lorem ipsum"), "placeholder text")
  ]),
  retry: { retries: 1 }
})

const program = extract(ChatCompletion.prompt("Extract the invoice as JSON: ...", { max_tokens: 400 })).pipe(
  Effect.map((served) => Schema.decodeUnknownSync(Schema.fromJsonString(Invoice))(ChatCompletion.text(served.value)))
)
// a cut-off answer from gpt-4o-mini is retried once, then gpt-4o is asked; the attempts say why:
// AnswerRejectedError (truncated): Model gpt-4o-mini gave an answer cut off by its token limit
