import { Fallback } from "@resilient-llm/core"

/** The chain the program and the type assertions share. */
export const complete = Fallback.chain(["model-a", "model-b"], { timeout: "5 seconds" })
