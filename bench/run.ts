/**
 * `npm run bench -- <name...>`: runs the named benchmarks (all when none is named). Each prints
 * one JSON line per figure, with its baseline measured in the same run and the ratio.
 */
const suites: Record<string, ReadonlyArray<string>> = {
  log: ["./logRedis.ts", "./logPostgres.ts", "./logDurability.ts", "./logCluster.ts"],
  "log-cluster": ["./logCluster.ts"],
  api: ["./api.ts"],
  actors: ["./actors.ts"],
  projections: ["./projections.ts"],
  e2e: ["./e2e.ts"],
  replay: ["./replay.ts"],
  import: ["./import.ts"],
  growth: ["./growth.ts"],
  metrics: ["./metrics.ts"],
  trim: ["./trim.ts"],
  soak: ["./soak.ts"],
  fleet: ["./fleet.ts"],
  broadcast: ["./broadcast.ts"],
  "broadcast-kill": ["./broadcastKill.ts"],
  cli: ["./cli.ts"],
  sealing: ["./sealing.ts"]
}

const names = process.argv.slice(2).filter((a) => !a.startsWith("-"))
const unknown = names.filter((n) => !(n in suites))
if (unknown.length > 0) {
  console.error(`unknown benchmark ${unknown.join(", ")}; known: ${Object.keys(suites).join(", ")}`)
  process.exit(2)
}
for (const name of names.length > 0 ? names : Object.keys(suites)) {
  for (const file of suites[name]!) {
    const mod = (await import(new URL(file, import.meta.url).href)) as { run: () => Promise<void> }
    await mod.run()
  }
}
process.exit(0)
