/**
 * @since 0.1.0
 */
export * as GatewayConfig from "./GatewayConfig.js"
