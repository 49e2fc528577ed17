/**
 * Checks shared by the patterns' option validation, so every pattern agrees on what a count is.
 *
 * @internal
 */

/**
 * A count: a whole number of at least 1 that a double holds exactly (so `2 ** 53` and beyond,
 * which cannot be told from their neighbours, are not counts).
 *
 * @internal
 */
export const isPositiveInteger = (n: unknown): n is number => typeof n === "number" && Number.isSafeInteger(n) && n >= 1
