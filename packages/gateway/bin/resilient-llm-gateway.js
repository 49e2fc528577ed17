#!/usr/bin/env node
// Runs the gateway's command: from the compiled build in a published package, or from the
// TypeScript source through tsx inside this repository.
import { existsSync } from "node:fs"
import { URL } from "node:url"

const source = new URL("../src/bin.ts", import.meta.url)
if (existsSync(source)) {
  const { register } = await import("tsx/esm/api")
  register()
  await import(source.href)
} else {
  await import(new URL("../build/src/bin.js", import.meta.url).href)
}
