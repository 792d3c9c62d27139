import { Command } from "commander"
import { Clock, Data, Effect } from "effect"
import { describeBreak, lastVerification } from "../../audit/periodic.js"
import { AppConfig } from "../../config.js"
import { readBackupHealth } from "../../ops/backups/health.js"
import type { BackupHealth } from "../../ops/backups/health.js"
import { backupTargetFor } from "../../ops/backups/targets.js"
import { DIVERGED_REASON, HELD_REASON, readDivergences } from "../../projections/divergence.js"
import { projectionLag } from "../../projections/lag.js"
import { makeNodeRegistry } from "../../runtime/nodeRegistry.js"
import type { NodeRow } from "../../runtime/nodeRegistry.js"
import { storesFor } from "../hosted.js"
import { botRows } from "../bots/botRows.js"
import { printJson, printTable } from "../io.js"
import type { CliIo } from "../io.js"
import { runCommand } from "../runtime.js"
import { printBotRows } from "./botsCommand.js"
import { aiStatusLine } from "../../ai/aiStatus.pure.js"
import { listBroadcasts } from "../../broadcast/broadcastStore.js"

type SetExit = (code: number) => void

/** A table status reads could not be read (the database is unreachable or not migrated). */
export class StatusUnreadable extends Data.TaggedError("StatusUnreadable")<{ readonly what: string; readonly cause: unknown }> {
  override get message() {
    const cause = this.cause instanceof Error ? this.cause.message : String(this.cause)
    return `cannot read ${this.what}: ${cause}`
  }
}

/**
 * `botfleet status [--json]`: the fleet at a glance, read from the stores (so it works whichever
 * node runs what, and with no node running): per bot its state, version, node, crashes, last error
 * and inbox lag; per log partition the projection lag and the dead letters waiting (and how many of
 * them a hot log / archive divergence holds); the last audit chain verification; the divergences.
 */
export const statusCommand = (io: CliIo, setExit: SetExit): Command =>
  new Command("status")
    .description("fleet status: per bot state, version, node, crashes, last error, inbox lag; per partition projection lag and dead letters")
    .option("--json", "print as JSON")
    .action(async (opts: { json?: boolean }) => {
      const program = Effect.scoped(
        Effect.gen(function* () {
          const config = yield* AppConfig
          const s = yield* storesFor(io, config)
          const bots = yield* botRows({ log: s.log, inbox: s.inbox, sql: s.sql })
          const lag = yield* projectionLag({ log: s.log, sql: s.sql })
          const partitions = yield* Effect.forEach(lag, (l) =>
            Effect.map(s.log.readDeadLetters(l.partition), (dead) => ({
              partition: l.partition,
              projectionLag: l.waiting,
              projectionLagCapped: l.waitingCapped,
              oldestWaitingAgeMs: l.oldestWaitingAgeMs,
              projectorStalled: l.stalled,
              deadLetters: dead.length,
              // hot-log entries held back because their bot's hot log diverged from the archive
              diverged: dead.filter((d) => d.reason.startsWith(DIVERGED_REASON) || d.reason.startsWith(HELD_REASON)).length
            }))
          )
          const backups = yield* readBackupHealth({ sql: s.sql, log: s.log, config, now: yield* Clock.currentTimeMillis, target: backupTargetFor(config).label })
          const audit = yield* Effect.tryPromise({ try: () => lastVerification(s.sql), catch: (cause) => new StatusUnreadable({ what: "audit_verifications", cause }) })
          const divergences = yield* Effect.tryPromise({ try: () => readDivergences(s.sql), catch: (cause) => new StatusUnreadable({ what: "archive_divergences", cause }) })
          // broadcasts still going (running or paused), with their progress (docs/telegram.md "Broadcasts")
          const broadcasts = (yield* Effect.tryPromise({ try: () => listBroadcasts(s.sql), catch: (cause) => new StatusUnreadable({ what: "broadcasts", cause }) })).filter(
            (b) => b.state === "running" || b.state === "paused"
          )
          const nodes = yield* makeNodeRegistry(s.sql).nodes.pipe(Effect.mapError((e) => new StatusUnreadable({ what: "fleet_nodes", cause: e.cause })))
          if (opts.json) return printJson(io, { mode: config.mode, nodes: nodes.map((n) => ({ ...n, state: nodeState(n) })), bots, partitions, backups, audit, divergences, broadcasts })
          io.stdout(`mode ${config.mode}, ${bots.length} bot${bots.length === 1 ? "" : "s"} in the fleet directory`)
          printBotRows(io, bots, false)
          for (const b of bots) if (b.ai !== null) io.stdout(`  ${b.botId} AI: ${aiStatusLine(b.ai)}`)
          io.stdout("")
          printNodes(io, nodes)
          io.stdout("")
          printTable(
            io,
            partitions.map((p) => ({
              partition: p.partition,
              "projection lag": `${p.projectionLag}${p.projectionLagCapped ? "+" : ""}`,
              "oldest waiting": p.oldestWaitingAgeMs === null ? "-" : `${Math.round(p.oldestWaitingAgeMs / 1000)}s`,
              projector: p.projectorStalled ? "STALLED" : "ok",
              "dead letters": p.deadLetters,
              diverged: p.diverged
            }))
          )
          io.stdout("")
          for (const line of backupLines(backups)) io.stdout(line)
          io.stdout(
            audit === null
              ? "audit chain: not verified yet (nodes verify it every AUDIT_VERIFY_EVERY_MS; or run botfleet audit verify --anchor)"
              : audit.ok
                ? `audit chain: ok, ${audit.rows} rows of ${audit.owners} owners verified at ${audit.finishedAt} by ${audit.nodeId} (${audit.anchors} anchors written)`
                : `audit chain: BROKEN (verified at ${audit.finishedAt} by ${audit.nodeId}, ${audit.rows} rows checked): ${describeBreak(audit.firstBreak!)}`
          )
          for (const b of broadcasts) {
            io.stdout(`broadcast ${b.broadcastId} (bot ${b.botId}) ${b.state}: ${b.sent} sent, ${b.failed} failed, ${b.blocked + b.skippedBlocked} blocked, ${b.pending} pending of ${b.total}`)
          }
          if (divergences.length === 0) io.stdout("hot log vs archive: no divergence")
          else {
            io.stdout(`hot log vs archive: ${divergences.length} diverged version${divergences.length === 1 ? "" : "s"} of ${new Set(divergences.map((d) => d.botId)).size} bot(s); their later events are held (docs/redis.md):`)
            printTable(io, divergences.slice(0, 20).map((d) => ({ bot: d.botId, version: d.version, archive: `${d.archivedType} ${d.archivedEventId}`, "hot log": `${d.logType} ${d.logEventId}`, detected: d.detectedAt })))
            if (divergences.length > 20) io.stdout(`... and ${divergences.length - 20} more (--json lists them all)`)
          }
        })
      )
      setExit(await runCommand(program, undefined, { env: io.env, stderr: io.stderr }))
    })

const run = (r: BackupHealth["backup"]) => (r === null ? "never" : `${r.backup ?? "(unnamed)"} ${r.ok ? "ok" : "FAILED"} at ${r.finishedAt}`)

/** The backups section of `status`: schedule, who takes them, the last runs, and any alert. */
export const backupLines = (h: BackupHealth): ReadonlyArray<string> => [
  `backups: ${h.schedule === null ? "not scheduled (BACKUP_SCHEDULE unset)" : `BACKUP_SCHEDULE ${h.schedule}, drills ${h.drillSchedule ?? "off"}, taken by ${h.scheduler === null ? "no node now" : `node ${h.scheduler}`}`} → ${h.target}`,
  `  last backup: ${run(h.backup)}${h.backup !== null && !h.backup.ok ? `; last good: ${run(h.lastGoodBackup)}` : ""}`,
  `  last verification: ${run(h.verify)}`,
  `  last restore drill: ${run(h.drill)}`,
  ...h.alerts.map((a) => `ALERT: ${a}`)
]

/** live; stopped (gracefully, bots handed over); SILENT: no heartbeat within its lease TTL (killed, hung or cut off). */
export const nodeState = (n: NodeRow): "live" | "stopped" | "SILENT" => (n.stopped ? "stopped" : n.live ? "live" : "SILENT")

/** The nodes section of `status`: one row per node that ever joined the fleet (sql/0125), a silent one flagged. */
export const printNodes = (io: CliIo, nodes: ReadonlyArray<NodeRow>): void => {
  if (nodes.length === 0) return io.stdout("nodes: none has joined yet (a running node registers itself)")
  const live = nodes.filter((n) => n.live).length
  const silent = nodes.filter((n) => nodeState(n) === "SILENT")
  const rows = nodes.map((n) => ({
    node: n.nodeId,
    version: n.version,
    state: nodeState(n),
    "bots held": n.stopped ? "-" : n.botsHeld,
    "last heartbeat": `${n.heartbeatAt} (${Math.round(n.heartbeatAgeMs / 1000)}s ago)`,
    started: n.startedAt
  }))
  io.stdout(`nodes: ${live} live of ${nodes.length}`)
  printTable(io, rows)
  for (const n of silent) {
    io.stdout(`ALERT: node ${n.nodeId} stopped heartbeating ${Math.round(n.heartbeatAgeMs / 1000)}s ago (lease TTL ${n.leaseTtlMs} ms): its bots go to the live nodes as their leases lapse`)
  }
}
