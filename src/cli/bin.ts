import { main } from "./main.js"

// The compiled entry point (dist/cli/bin.js, what the container image runs): bin/botfleet.js does
// the same through tsx from a checkout.
process.exitCode = await main(process.argv.slice(2))
