#!/usr/bin/env node
// The gateway's command inside this repository: runs the TypeScript source through tsx, so that it
// needs no build. The published package's `bin` is the compiled `dist/bin.js` instead
// (`publishConfig.bin`), and this folder is not packed.
import { register } from "tsx/esm/api"
import { URL } from "node:url"

register()
await import(new URL("../src/bin.ts", import.meta.url).href)
