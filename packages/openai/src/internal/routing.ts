/**
 * Model-name patterns and the router over them: exact names and `*` globs, first match wins.
 *
 * @internal
 */

/**
 * @internal
 */
export interface Pattern {
  readonly source: string
  readonly exact: boolean
  readonly matches: (model: string) => boolean
}

/**
 * Compiles a pattern. `*` matches any run of characters (`/` and the empty run included); every
 * other character, `?` and `.` among them, matches itself. Matching is linear in the model name
 * per `*` segment, with no regular expression to backtrack.
 *
 * @internal
 */
export const compile = (source: string): Pattern => {
  if (!source.includes("*")) return { source, exact: true, matches: (model) => model === source }
  const parts = source.split("*")
  const first = parts[0]
  const last = parts[parts.length - 1]
  const middle = parts.slice(1, -1).filter((part) => part.length > 0)
  return {
    source,
    exact: false,
    matches: (model) => {
      if (model.length < first.length + last.length) return false
      if (!model.startsWith(first) || !model.endsWith(last)) return false
      // Leftmost placement of each middle part is optimal for `*`-only globs.
      let position = first.length
      const end = model.length - last.length
      for (const part of middle) {
        const found = model.indexOf(part, position)
        if (found < 0 || found + part.length > end) return false
        position = found + part.length
      }
      return true
    }
  }
}

/**
 * @internal
 */
export interface Route<A> {
  readonly name: string
  readonly patterns: ReadonlyArray<Pattern>
  readonly target: A
}

/**
 * The first route (in order) with a pattern matching `model`, with the pattern that matched.
 *
 * @internal
 */
export const find = <A>(
  routes: ReadonlyArray<Route<A>>,
  model: string
): { readonly route: Route<A>; readonly pattern: Pattern } | undefined => {
  for (const route of routes) {
    for (const pattern of route.patterns) {
      if (pattern.matches(model)) return { route, pattern }
    }
  }
  return undefined
}
