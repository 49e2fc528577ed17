/**
 * The pure parts of a judge: the strict reply parser, the judge prompt, and how a prompt request
 * becomes the text a judge reads.
 *
 * @internal
 */
import * as Result from "effect/Result"
import type { ChatMessage } from "../ChatCompletion.js"

/** @internal */
export interface Scale {
  readonly min: number
  readonly max: number
}

/** @internal */
export const defaultScale: Scale = { min: 1, max: 10 }

/** @internal */
export const defaultRubric = [
  "Judge the response to the prompt on three criteria, weighted equally:",
  "- Accuracy: is what it says correct, with nothing made up?",
  "- Completeness: does it answer everything the prompt asks?",
  "- Clarity: is it clear, well organised and easy to follow?"
].join("\n")

/**
 * A plain decimal: an optional minus sign, ASCII digits, and optionally a point followed by ASCII
 * digits (`\d` without the `u` flag is `[0-9]` only, so `"８"` and `"٨"` do not match). No exponent,
 * no sign `+`, no bare point (`"8."`, `".5"`), no `NaN`/`Infinity`, no fraction such as `8/10`, no
 * space or separator inside. Leading and trailing zeros are fine (`"08"`, `"8.50"`).
 */
const decimal = /^-?\d+(?:\.\d+)?$/

/** @internal */
export type ParseFailure = "NotANumber" | "OutOfScale"

/**
 * The whole reply, trimmed of surrounding whitespace (`String.prototype.trim`: Unicode spaces and
 * line breaks included), must be one plain decimal within the scale. `"-0"` reads as 0. A string
 * of digits too long for a double reads as `Infinity`, which no scale contains.
 *
 * @internal
 */
export const parseReply = (reply: string, scale: Scale): Result.Result<number, ParseFailure> => {
  const trimmed = reply.trim()
  if (!decimal.test(trimmed)) return Result.fail("NotANumber")
  // `+ 0` turns -0 into 0, so a score never carries a sign that no comparison can see
  const value = Number(trimmed) + 0
  return value >= scale.min && value <= scale.max ? Result.succeed(value) : Result.fail("OutOfScale")
}

/** @internal */
export const isValidScale = (scale: Scale): boolean =>
  Number.isFinite(scale.min) && Number.isFinite(scale.max) && scale.min < scale.max

/**
 * Why a scale is not one, in words; `undefined` for a valid scale.
 *
 * @internal
 */
export const invalidScale = (scale: Scale): string | undefined =>
  isValidScale(scale)
    ? undefined
    : `the scale ${String(scale.min)} to ${String(scale.max)} is not a range of finite numbers from low to high`

/** @internal */
export const formatNumber = (n: number): string => Number.isInteger(n) ? n.toFixed(0) : String(n)

/** @internal */
export const systemPrompt = (rubric: string, scale: Scale): string =>
  [
    "You are a strict, impartial evaluator of answers written by AI assistants.",
    "",
    rubric,
    "",
    `Score the response from ${formatNumber(scale.min)} (worst) to ${formatNumber(scale.max)} (best).`,
    "Reply with a single number and nothing else: no words, no explanation, no units, no fraction such as 8/10."
  ].join("\n")

/** @internal */
export const userPrompt = (prompt: string, response: string): string =>
  `<prompt>\n${prompt}\n</prompt>\n\n<response>\n${response}\n</response>`

const contentText = (content: ChatMessage["content"]): string => {
  if (content === undefined || content === null) return ""
  if (typeof content === "string") return content
  return content.flatMap((part) =>
    typeof part === "object" && part !== null && "text" in part && typeof part.text === "string" ? [part.text] : []
  ).join("\n")
}

/**
 * The text a judge reads as "the prompt": a lone user message as it is, a conversation as
 * `role: content` lines. Non-text content parts (images) are left out.
 *
 * @internal
 */
export const promptText = (messages: ReadonlyArray<ChatMessage>): string => {
  if (messages.length === 1 && messages[0].role === "user") return contentText(messages[0].content)
  return messages.map((message) => `${message.role}: ${contentText(message.content)}`).join("\n\n")
}

/**
 * A reply as it may appear in an error message: quoted, and cut short when long.
 *
 * @internal
 */
export const quoteReply = (reply: string): string =>
  JSON.stringify(reply.length > 120 ? `${reply.slice(0, 120)}…` : reply)

/** @internal */
export const mean = (values: ReadonlyArray<number>): number =>
  values.reduce((sum, value) => sum + value, 0) / values.length
