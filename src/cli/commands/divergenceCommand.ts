import { Command } from "commander"
import { openRedis } from "../../health/redisHealth.js"
import { Effect, Option, Redacted } from "effect"
import { AppConfig } from "../../config.js"
import { readDivergences } from "../../projections/divergence.js"
import { openStores } from "../../runtime/stores.js"
import { resolveDivergence } from "../divergence/resolve.js"
import { printJson, printTable } from "../io.js"
import type { CliIo } from "../io.js"
import { CommandFailed, runCommand } from "../runtime.js"
import { resolveBotRef } from "../bots/botRef.js"
import { asSubcommand } from "./botsCommand.js"

type SetExit = (code: number) => void

/**
 * `botfleet divergence list|resolve`: versions where the hot log (Redis) and the archive disagree
 * after Redis lost acknowledged writes, and their repair, the archive's history winning
 * (docs/redis.md, "When the hot log and the archive diverge").
 */
export const divergenceCommand = (io: CliIo, setExit: SetExit): Command => {
  const run = async (program: Effect.Effect<unknown, unknown, AppConfig>) => setExit(await runCommand(program, undefined, { env: io.env, stderr: io.stderr }))
  const withStores = <A, E>(body: (s: Effect.Effect.Success<ReturnType<typeof openStores>>) => Effect.Effect<A, E>) =>
    Effect.scoped(Effect.flatMap(Effect.flatMap(AppConfig, openStores), body))

  return new Command("divergence")
    .description("versions where the hot log and the archive disagree (Redis lost acknowledged writes), and their repair")
    .addCommand(
      asSubcommand(io, new Command("list")
        .description("the recorded divergences: per bot and version, the archive's event and the hot log's")
        .option("--json", "print as JSON")
        .action(async (opts: { json?: boolean }) => {
          await run(withStores((s) => Effect.gen(function* () {
            const ds = yield* Effect.tryPromise({ try: () => readDivergences(s.sql), catch: (cause) => new CommandFailed({ detail: `cannot read archive_divergences: ${String(cause)}` }) })
            if (opts.json) return printJson(io, ds)
            if (ds.length === 0) return io.stdout("no divergence between the hot log and the archive")
            printTable(io, ds.map((d) => ({ bot: d.botId, version: d.version, owner: d.ownerId, archive: `${d.archivedType} ${d.archivedEventId}`, "hot log": `${d.logType} ${d.logEventId}`, partition: d.logPartition, position: d.logPosition, detected: d.detectedAt })))
          })))
        })
      )
    )
    .addCommand(
      asSubcommand(io, new Command("resolve")
        .description("the archive's history wins: rewind the bot's hot stream to before its first diverged version and append the archive's events back (stop the bot first)")
        .argument("<bot>", "the bot's id, or its @username")
        .option("--json", "print the report as JSON")
        .action(async (ref: string, opts: { json?: boolean }) => {
          await run(Effect.scoped(Effect.gen(function* () {
            const config = yield* AppConfig
            const s = yield* openStores(config)
            const botId = yield* resolveBotRef(s, ref)
            if (config.mode !== "production" || Option.isNone(config.redisUrl)) {
              return yield* new CommandFailed({ detail: "only the Redis hot log can diverge from the archive: embedded mode keeps both in one database" })
            }
            const redisUrl = Redacted.value(config.redisUrl.value)
            const redis = yield* Effect.acquireRelease(Effect.sync(() => openRedis(redisUrl, "divergence-resolve")), (r) => Effect.promise(() => r.quit().catch(() => "")))
            const report = yield* resolveDivergence({ log: s.log, redis, prefix: config.redisPrefix, sql: s.sql, botId, leaseOwner: `divergence-resolve-${config.nodeId}` })
            if (opts.json) return printJson(io, report)
            io.stdout(
              `bot ${botId}: hot log rewound to version ${report.fromVersion - 1} (${report.hotLogEntriesRemoved} hot-log entries removed) and the archive's versions ` +
                `${report.fromVersion}..${report.toVersion} appended back; the bot goes on from the archive's history (start it again with botfleet bots start ${botId}).`
            )
            if (report.discardedDeadLetters > 0) {
              io.stdout(`${report.discardedDeadLetters} dead letters keep the discarded hot-log events (botfleet dlq list): a record of what the bot did meanwhile; do not retry them.`)
            }
          })))
        })
      )
    )
}
