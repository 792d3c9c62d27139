#!/usr/bin/env node
// The botfleet command: the compiled CLI (dist/cli/main.js) when the build is current, else the
// TypeScript sources through tsx (bin/entry.js), in this same process.
import { importEntry } from "./entry.js"

const { main } = await importEntry("cli/main")
process.exitCode = await main(process.argv.slice(2))
