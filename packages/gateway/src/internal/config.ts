/**
 * Reading a configuration: YAML (or JSON) to a document that remembers where each node is, the
 * schema's decoding with every issue kept, then the checks of references across sections. Every
 * issue is placed on the line of the field it is about (or of the nearest enclosing field that the
 * file has).
 *
 * @internal
 */
import * as Duration from "effect/Duration"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import * as SchemaIssue from "effect/SchemaIssue"
import * as Yaml from "yaml"
import type * as GatewayConfig from "../GatewayConfig.js"

type Path = ReadonlyArray<PropertyKey>

interface PathIssue {
  readonly path: Path
  readonly message: string
}

const formatter = SchemaIssue.makeFormatterStandardSchemaV1()

const segmentOf = (segment: PropertyKey | { readonly key: PropertyKey }): PropertyKey =>
  typeof segment === "object" && segment !== null ? segment.key : segment

const fieldOf = (path: Path): string =>
  path.reduce<string>(
    (field, segment) =>
      typeof segment === "number"
        ? `${field}[${segment}]`
        : field === ""
        ? String(segment)
        : `${field}.${String(segment)}`,
    ""
  )

/** The offset of the field at `path`: its key where it has one, else its value; or the nearest ancestor's. */
const offsetOf = (document: Yaml.Document, path: Path): number | undefined => {
  let node: unknown = document.contents
  let offset: number | undefined = Yaml.isNode(node) ? node.range?.[0] : undefined
  for (const segment of path) {
    if (Yaml.isMap(node)) {
      const pair = node.items.find((item) => Yaml.isScalar(item.key) && String(item.key.value) === String(segment))
      if (pair === undefined) return offset
      const at = Yaml.isNode(pair.key) ? pair.key.range?.[0] : undefined
      offset = at ?? offset
      node = pair.value
    } else if (Yaml.isSeq(node) && typeof segment === "number") {
      const item = node.items[segment]
      if (!Yaml.isNode(item)) return offset
      offset = item.range?.[0] ?? offset
      node = item
    } else {
      return offset
    }
  }
  return offset
}

const toIssue = (document: Yaml.Document, lines: Yaml.LineCounter, issue: PathIssue): GatewayConfig.Issue => {
  const offset = offsetOf(document, issue.path)
  const position = offset === undefined ? undefined : lines.linePos(offset)
  return { line: position?.line, column: position?.col, field: fieldOf(issue.path), message: issue.message }
}

/**
 * Where a field is in a configuration's text: its line and column (when the text has it), and its
 * path as a field name. For mistakes found after parsing, when the configuration is built.
 *
 * @internal
 */
export const locate = (text: string, path: ReadonlyArray<PropertyKey>): Omit<GatewayConfig.Issue, "message"> => {
  const lines = new Yaml.LineCounter()
  const document = Yaml.parseDocument(text, { lineCounter: lines })
  const { message: _, ...located } = toIssue(document, lines, { path, message: "" })
  return located
}

/** `*` stands for any run of characters; nothing else is special. */
export const globMatches = (pattern: string, name: string): boolean => {
  if (!pattern.includes("*")) return pattern === name
  const parts = pattern.split("*")
  const first = parts[0]
  const last = parts[parts.length - 1]
  if (name.length < first.length + last.length || !name.startsWith(first) || !name.endsWith(last)) return false
  let position = first.length
  const end = name.length - last.length
  for (const part of parts.slice(1, -1)) {
    if (part.length === 0) continue
    const found = name.indexOf(part, position)
    if (found < 0 || found + part.length > end) return false
    position = found + part.length
  }
  return true
}

/** The model patterns a provider serves directly: its `models`, or a fake's model names. */
export const providerPatterns = (provider: GatewayConfig.Provider): ReadonlyArray<string> =>
  provider.fake !== undefined ? Object.keys(provider.fake.models) : provider.models ?? []

/** @internal */
export const deploymentNames = (config: GatewayConfig.Config): ReadonlyArray<string> => {
  const names = new Set(Object.keys(config.deployments ?? {}))
  for (const provider of Object.values(config.providers)) {
    for (const pattern of providerPatterns(provider)) if (!pattern.includes("*")) names.add(pattern)
  }
  return [...names].sort()
}

/** Whether a pattern may call `model`: a declared logical model, or a name a provider serves. */
export const isServable = (config: GatewayConfig.Config, model: string): boolean =>
  (config.deployments !== undefined && Object.hasOwn(config.deployments, model)) ||
  Object.values(config.providers).some((provider) => providerPatterns(provider).some((p) => globMatches(p, model)))

/** An entry of `deployments` in its long form: the routing options and the deployments, each with where it is. */
export interface EntryForm {
  readonly options: Omit<GatewayConfig.LogicalModel, "deployments">
  readonly deployments: ReadonlyArray<{ readonly deployment: GatewayConfig.Deployment; readonly path: Path }>
  /** Where the list of deployments is, for issues about all of them. */
  readonly listPath: Path
}

/** An entry's three forms (one deployment, a list, a logical model) as one. */
export const entryForm = (logical: string, entry: GatewayConfig.DeploymentsEntry): EntryForm => {
  const at = ["deployments", logical]
  if (isDeploymentList(entry)) {
    return { options: {}, deployments: entry.map((deployment, i) => ({ deployment, path: [...at, i] })), listPath: at }
  }
  if ("deployments" in entry) {
    const { deployments, ...options } = entry
    return {
      options,
      deployments: deployments.map((deployment, i) => ({ deployment, path: [...at, "deployments", i] })),
      listPath: [...at, "deployments"]
    }
  }
  return { options: {}, deployments: [{ deployment: entry, path: at }], listPath: at }
}

const isDeploymentList = (
  entry: GatewayConfig.DeploymentsEntry
): entry is ReadonlyArray<GatewayConfig.Deployment> => Array.isArray(entry)

/** A deployment's name: its own, else `provider/model` (the logical name when it gives no model). */
export const deploymentName = (logical: string, deployment: GatewayConfig.Deployment): string =>
  deployment.name ?? `${deployment.provider}/${deployment.model ?? logical}`

/** A deployment ready for the router: its name and provider's model name resolved, and where it is. */
export interface ResolvedDeployment {
  readonly deployment: GatewayConfig.Deployment
  readonly name: string
  readonly model: string
  readonly path: Path
}

/** A logical model ready for the router: its options, its breaker, its deployments. */
export interface Logical {
  readonly name: string
  /** Where it is declared; for a name a provider serves directly, that provider. */
  readonly path: Path
  readonly options: Omit<GatewayConfig.LogicalModel, "deployments" | "breaker">
  /** Its own breaker, else the file's; `undefined` for the library's defaults. */
  readonly breaker: GatewayConfig.BreakerOptions | false | undefined
  readonly deployments: ReadonlyArray<ResolvedDeployment>
}

/** The logical models one virtual model calls (its pattern's models, a judge), in order, without repeats. */
export const calledBy = (model: GatewayConfig.VirtualModel): ReadonlyArray<string> => {
  const names = new Set<string>()
  for (const name of model.fallback ?? []) names.add(name)
  for (const variant of model.experiment?.variants ?? []) names.add(variant.model)
  for (const name of model.bestOfN?.models ?? []) names.add(name)
  if (model.bestOfN !== undefined) names.add(model.bestOfN.judge.model)
  return [...names]
}

/** Every logical model name the virtual models of a configuration call, in order, without repeats. */
const calledModels = (config: GatewayConfig.Config): ReadonlyArray<string> => [
  ...new Set(Object.values(config.models).flatMap(calledBy))
]

/**
 * The logical models a configuration runs: every one declared under `deployments`, and every name
 * a virtual model calls that a provider serves directly, as a logical model with one deployment
 * (`provider/name`) on the first provider whose `models` match it.
 */
export const logicalModels = (config: GatewayConfig.Config): ReadonlyArray<Logical> => {
  const logical: Array<Logical> = []
  for (const [name, entry] of Object.entries(config.deployments ?? {})) {
    const form = entryForm(name, entry)
    const { breaker, ...options } = form.options
    logical.push({
      name,
      path: ["deployments", name],
      options,
      breaker: breaker ?? config.breaker,
      deployments: form.deployments.map(({ deployment, path }) => ({
        deployment,
        name: deploymentName(name, deployment),
        model: deployment.model ?? name,
        path
      }))
    })
  }
  for (const name of calledModels(config)) {
    if (config.deployments !== undefined && Object.hasOwn(config.deployments, name)) continue
    const provider = Object.entries(config.providers).find(([, p]) =>
      providerPatterns(p).some((pattern) => globMatches(pattern, name))
    )
    if (provider === undefined) continue
    const deployment: GatewayConfig.Deployment = { provider: provider[0], model: name }
    logical.push({
      name,
      path: ["providers", provider[0]],
      options: {},
      breaker: config.breaker,
      deployments: [{
        deployment,
        name: deploymentName(name, deployment),
        model: name,
        path: ["providers", provider[0]]
      }]
    })
  }
  return logical
}

const checkBreaker = (
  add: (path: Path, message: string) => void,
  path: Path,
  breaker: GatewayConfig.BreakerOptions | false | undefined
) => {
  if (breaker !== undefined && breaker !== false) {
    if (breaker.consecutiveFailures !== undefined && breaker.failureRate !== undefined) {
      add(path, "trip on consecutiveFailures or on failureRate, not both")
    }
  }
}

const isHttpUrl = (value: string): boolean => {
  try {
    const url = new URL(value)
    return (url.protocol === "http:" || url.protocol === "https:") && url.username === "" && url.password === ""
  } catch {
    return false
  }
}

/** What is wrong with a Redis URL written in the file, if anything; never the URL itself, which may hold a secret. */
export const redisUrlProblem = (value: string): string | undefined => {
  let url: URL
  try {
    url = new URL(value)
  } catch {
    return "expected a redis:// or rediss:// URL"
  }
  if (url.protocol !== "redis:" && url.protocol !== "rediss:") return "expected a redis:// or rediss:// URL"
  return url.password === ""
    ? undefined
    : "a URL with a password belongs in the environment: name its variable in urlEnv"
}

// Hedging's bounds that span two fields; the rest are the schema's. What `Fallback.hedge` would
// refuse is refused here, so a gateway never starts with a chain that fails every request.
const checkHedge = (
  add: (path: Path, message: string) => void,
  at: Path,
  hedge: GatewayConfig.HedgeOptions,
  fallback: boolean
): void => {
  if (!fallback) add(at, "hedging is for fallback chains: give this virtual model a fallback, or remove hedge")
  const delay = hedge.delay
  if (Duration.isDuration(delay)) return
  const samples = delay.samples ?? 100
  if (delay.minSamples !== undefined && delay.minSamples > samples) {
    add([...at, "delay", "minSamples"], `more than the ${samples} samples kept`)
  }
  if (delay.min !== undefined && delay.max !== undefined && Duration.isGreaterThan(delay.min, delay.max)) {
    add([...at, "delay", "min"], "more than max")
  }
}

/** The checks the schema cannot make: references between sections, and choices of exactly one. */
const crossCheck = (config: GatewayConfig.Config): ReadonlyArray<PathIssue> => {
  const issues: Array<PathIssue> = []
  const add = (path: Path, message: string) => issues.push({ path, message })
  const servable = (path: Path, model: string) => {
    if (!isServable(config, model)) {
      add(path, `no deployment or provider serves "${model}" (declare it under deployments, or in a provider's models)`)
    }
  }

  const providers = Object.entries(config.providers)
  if (providers.length === 0) add(["providers"], "declare at least one provider")
  for (const [name, provider] of providers) {
    const at = ["providers", name]
    if (provider.fake !== undefined) {
      for (const field of ["baseUrl", "apiKeyEnv", "headers", "secretHeadersEnv", "models"] as const) {
        if (provider[field] !== undefined) add([...at, field], "a fake provider takes no endpoint options")
      }
      if (Object.keys(provider.fake.models).length === 0) add([...at, "fake", "models"], "declare at least one model")
    } else if (provider.baseUrl === undefined) {
      add(at, "a provider needs a baseUrl, or fake: for the built-in fake provider")
    } else if (!isHttpUrl(provider.baseUrl)) {
      add([...at, "baseUrl"], "expected an http(s) URL without credentials")
    }
    for (const [header] of Object.entries(provider.headers ?? {})) {
      if (header.toLowerCase() === "authorization") {
        add([...at, "headers", header], "keys never go in the file: use apiKeyEnv or secretHeadersEnv")
      }
    }
  }

  checkBreaker(add, ["breaker"], config.breaker)
  const deploymentNames = new Map<string, Path>()
  for (const [name, entry] of Object.entries(config.deployments ?? {})) {
    const form = entryForm(name, entry)
    if (form.deployments.length === 0) add(form.listPath, "declare at least one deployment")
    if (form.deployments.length > 0 && form.deployments.every(({ deployment }) => (deployment.weight ?? 1) === 0)) {
      add(form.listPath, "every deployment has weight 0, so none would get traffic")
    }
    checkBreaker(add, ["deployments", name, "breaker"], form.options.breaker)
    for (const { deployment, path } of form.deployments) {
      if (!Object.hasOwn(config.providers, deployment.provider)) {
        add([...path, "provider"], `no provider is named "${deployment.provider}"`)
      }
      const deploymentName_ = deploymentName(name, deployment)
      if (deploymentNames.has(deploymentName_)) {
        add(
          deployment.name === undefined ? path : [...path, "name"],
          `another deployment is named "${deploymentName_}" (names are unique in the file; give this one a name)`
        )
      }
      deploymentNames.set(deploymentName_, path)
      if (deployment.maxQueued !== undefined && deployment.maxConcurrent === undefined) {
        add([...path, "maxQueued"], "a queue is for a bulkhead: set maxConcurrent too")
      }
      if (form.options.strategy === "cheapest" && deployment.price === undefined) {
        add(path, "the strategy is cheapest: give every deployment a price")
      }
    }
  }

  const virtual = Object.entries(config.models)
  if (virtual.length === 0) add(["models"], "declare at least one virtual model")
  for (const [name, model] of virtual) {
    const at = ["models", name]
    const patterns = (["fallback", "experiment", "bestOfN"] as const).filter((p) => model[p] !== undefined)
    if (patterns.length !== 1) {
      add(
        at,
        patterns.length === 0
          ? "give it a pattern: fallback, experiment or bestOfN"
          : `give it one pattern, not ${patterns.join(" and ")}`
      )
    }
    if (model.fallback !== undefined) {
      if (model.fallback.length === 0) add([...at, "fallback"], "list at least one model")
      model.fallback.forEach((m, i) => servable([...at, "fallback", i], m))
    }
    if (model.experiment !== undefined) {
      const experiment = model.experiment
      if (experiment.variants.length === 0) add([...at, "experiment", "variants"], "list at least one variant")
      const seen = new Set<string>()
      experiment.variants.forEach((variant, i) => {
        if (seen.has(variant.name)) add([...at, "experiment", "variants", i, "name"], `"${variant.name}" is used twice`)
        seen.add(variant.name)
        servable([...at, "experiment", "variants", i, "model"], variant.model)
      })
      if (experiment.variants.length > 0 && experiment.variants.every((v) => v.weight === 0)) {
        add([...at, "experiment", "variants"], "every weight is zero, so no variant gets traffic")
      }
      if (experiment.control !== undefined && !seen.has(experiment.control)) {
        add([...at, "experiment", "control"], `no variant is named "${experiment.control}"`)
      }
    }
    if (model.bestOfN !== undefined) {
      const bestOfN = model.bestOfN
      if (bestOfN.models.length === 0) add([...at, "bestOfN", "models"], "list at least one model")
      bestOfN.models.forEach((m, i) => servable([...at, "bestOfN", "models", i], m))
      servable([...at, "bestOfN", "judge", "model"], bestOfN.judge.model)
      if (bestOfN.minCandidates !== undefined && bestOfN.minCandidates > bestOfN.models.length) {
        add([...at, "bestOfN", "minCandidates"], `more than the ${bestOfN.models.length} models listed`)
      }
      const scale = bestOfN.judge.scale
      if (scale !== undefined && !(scale.min < scale.max)) {
        add([...at, "bestOfN", "judge", "scale"], "min must be below max")
      }
    }
    if (model.hedge !== undefined) checkHedge(add, [...at, "hedge"], model.hedge, model.fallback !== undefined)
    if (model.rateLimit !== undefined && model.rateLimit.rpm === undefined && model.rateLimit.tpm === undefined) {
      add([...at, "rateLimit"], "a rate limit needs rpm, tpm or both")
    }
  }

  const redis = config.redis
  if (redis !== undefined) {
    if ((redis.url === undefined) === (redis.urlEnv === undefined)) {
      add(["redis"], "give the Redis URL as url or as urlEnv (an environment variable), exactly one")
    }
    const problem = redis.url === undefined ? undefined : redisUrlProblem(redis.url)
    if (problem !== undefined) add(["redis", "url"], problem)
  }

  const keys = config.keys ?? []
  if (keys.length === 0 && config.allowUnauthenticated !== true) {
    add(
      config.keys === undefined ? [] : ["keys"],
      "no gateway keys: declare keys, or set allowUnauthenticated: true for local development"
    )
  }
  const keyNames = new Set<string>()
  const hashes = new Set<string>()
  keys.forEach((key, i) => {
    const at = ["keys", i]
    if (keyNames.has(key.name)) add([...at, "name"], `"${key.name}" is used twice`)
    keyNames.add(key.name)
    if ((key.keyEnv === undefined) === (key.sha256 === undefined)) {
      add(at, "give the key as keyEnv (an environment variable) or as sha256 (its hash), exactly one")
    }
    if (key.sha256 !== undefined) {
      if (hashes.has(key.sha256)) add([...at, "sha256"], "another key has the same hash")
      hashes.add(key.sha256)
    }
    if (key.models.length === 0) add([...at, "models"], `list the virtual models it may use, or "*"`)
    key.models.forEach((m, j) => {
      if (m !== "*" && !Object.hasOwn(config.models, m)) add([...at, "models", j], `no virtual model is named "${m}"`)
    })
    const budget = key.budget
    if (
      budget !== undefined && budget.usd === undefined && budget.requests === undefined &&
      budget.tokens === undefined
    ) {
      add([...at, "budget"], "a budget needs usd, requests, tokens, or several of them")
    }
  })
  return issues
}

/**
 * The schemas `parse` decodes with: the file with its `deployments` entries left undecoded, and
 * each entry's three forms, so an entry is decoded in the form its shape says (an object with
 * `deployments` is a logical model, another object one deployment, an array a list) and its issues
 * are that form's alone, not every form's at once.
 *
 * @internal
 */
export interface Schemas {
  readonly file: Schema.Codec<
    Omit<GatewayConfig.Config, "deployments"> & {
      readonly deployments?: { readonly [name: string]: unknown }
    },
    unknown
  >
  readonly deployment: Schema.Codec<GatewayConfig.Deployment, unknown>
  readonly list: Schema.Codec<ReadonlyArray<GatewayConfig.Deployment>, unknown>
  readonly logical: Schema.Codec<GatewayConfig.LogicalModel, unknown>
}

const decodeOptions = { onExcessProperty: "error", errors: "all" } as const

const pathIssues = (
  error: Schema.SchemaError,
  prefix: Path,
  messages: Readonly<Record<string, string>>
): ReadonlyArray<PathIssue> =>
  formatter(error.issue).issues.map((issue): PathIssue => {
    const path = [...prefix, ...(issue.path ?? []).map(segmentOf)]
    const excess = issue.message === "Expected no excess property"
    const movedBreaker = excess && path.length === 3 && path[0] === "models" && path[2] === "breaker"
    return {
      path,
      message: movedBreaker
        ? "unknown field: breakers are per deployment, set under deployments.<model>.breaker or at the top level"
        : excess
        ? "unknown field"
        : messages[issue.message] ?? issue.message
    }
  })

const isObject = (u: unknown): u is { readonly [key: string]: unknown } =>
  typeof u === "object" && u !== null && !Array.isArray(u)

/**
 * Reads and checks a configuration's text; every issue found, or the configuration.
 *
 * @internal
 */
export const parse = (
  schemas: Schemas,
  text: string,
  messages: Readonly<Record<string, string>>
): Result.Result<GatewayConfig.Config, ReadonlyArray<GatewayConfig.Issue>> => {
  const lines = new Yaml.LineCounter()
  const document = Yaml.parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true })
  if (document.errors.length > 0) {
    return Result.fail(document.errors.map((error) => {
      const position = lines.linePos(error.pos[0])
      return { line: position.line, column: position.col, field: "", message: error.message.split("\n")[0] }
    }))
  }
  const located = (issues: ReadonlyArray<PathIssue>) => issues.map((issue) => toIssue(document, lines, issue))
  const json: unknown = document.toJS({ maxAliasCount: 100 })
  const issues: Array<PathIssue> = []
  const file = Schema.decodeUnknownResult(schemas.file)(json ?? {}, decodeOptions)
  if (Result.isFailure(file)) issues.push(...pathIssues(file.failure, [], messages))
  const deployments: Record<string, GatewayConfig.DeploymentsEntry> = {}
  const raw = isObject(json) && isObject(json["deployments"]) ? json["deployments"] : {}
  for (const [name, entry] of Object.entries(raw)) {
    const decoded: Result.Result<GatewayConfig.DeploymentsEntry, Schema.SchemaError> = Array.isArray(entry)
      ? Schema.decodeUnknownResult(schemas.list)(entry, decodeOptions)
      : isObject(entry) && Object.hasOwn(entry, "deployments")
      ? Schema.decodeUnknownResult(schemas.logical)(entry, decodeOptions)
      : Schema.decodeUnknownResult(schemas.deployment)(entry, decodeOptions)
    if (Result.isFailure(decoded)) issues.push(...pathIssues(decoded.failure, ["deployments", name], messages))
    else deployments[name] = decoded.success
  }
  if (Result.isFailure(file) || issues.length > 0) return Result.fail(located(issues))
  const { deployments: _, ...rest } = file.success
  const config: GatewayConfig.Config = file.success.deployments === undefined ? rest : { ...rest, deployments }
  const crossIssues = crossCheck(config)
  return crossIssues.length > 0 ? Result.fail(located(crossIssues)) : Result.succeed(config)
}
