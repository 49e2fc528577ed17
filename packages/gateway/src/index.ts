/**
 * @since 0.1.0
 */
export * as Gateway from "./Gateway.js"

/**
 * @since 0.1.0
 */
export * as GatewayConfig from "./GatewayConfig.js"
