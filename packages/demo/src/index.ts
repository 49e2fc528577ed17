/**
 * @since 0.1.0
 */
export * as Cli from "./Cli.js"

/**
 * @since 0.1.0
 */
export * as Output from "./Output.js"

/**
 * @since 0.1.0
 */
export * as Render from "./Render.js"

/**
 * @since 0.1.0
 */
export * as Story from "./Story.js"

/**
 * @since 0.1.0
 */
export * as Tour from "./Tour.js"

/**
 * @since 0.2.0
 */
export * as Shared from "./Shared.js"
