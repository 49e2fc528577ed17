/**
 * @since 0.1.0
 */
export * as ChatClient from "./ChatClient.js"

/**
 * @since 0.1.0
 */
export * as ChatCompletion from "./ChatCompletion.js"

/**
 * @since 0.1.0
 */
export * as LlmError from "./LlmError.js"

/**
 * @since 0.1.0
 */
export * as Observability from "./Observability.js"

/**
 * @since 0.1.0
 */
export * as Judge from "./Judge.js"

/**
 * @since 0.1.0
 */
export * as BestOfN from "./BestOfN.js"

/**
 * @since 0.1.0
 */
export * as Experiment from "./Experiment.js"

/**
 * @since 0.1.0
 */
export * as Retry from "./Retry.js"

/**
 * @since 0.1.0
 */
export * as Fallback from "./Fallback.js"

/**
 * @since 0.1.0
 */
export * as CircuitBreaker from "./CircuitBreaker.js"

/**
 * @since 0.2.0
 */
export * as Cost from "./Cost.js"

/**
 * @since 0.2.0
 */
export * as Budget from "./Budget.js"

/**
 * @since 0.2.0
 */
export * as Bulkhead from "./Bulkhead.js"

/**
 * @since 0.2.0
 */
export * as RateLimit from "./RateLimit.js"

/**
 * @since 0.2.0
 */
export * as Routing from "./Routing.js"

/**
 * @since 0.2.0
 */
export * as Deployments from "./Deployments.js"

/**
 * @since 0.2.0
 */
export * as Answer from "./Answer.js"

/**
 * @since 0.2.0
 */
export * as Stores from "./Stores.js"
