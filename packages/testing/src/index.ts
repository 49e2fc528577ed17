/**
 * @since 0.1.0
 */
export * as FakeProvider from "./FakeProvider.js"

/**
 * @since 0.1.0
 */
export * as TestChatClient from "./TestChatClient.js"

/**
 * @since 0.1.0
 */
export * as TestLogs from "./TestLogs.js"

/**
 * @since 0.1.0
 */
export * as TestSpans from "./TestSpans.js"

/**
 * @since 0.2.0
 */
export * as RedisServer from "./RedisServer.js"
