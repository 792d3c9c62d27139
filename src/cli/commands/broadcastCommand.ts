import { Command } from "commander"
import { Effect } from "effect"
import { AppConfig } from "../../config.js"
import { handoffPortsOf } from "../../actors/handoffDelivery.js"
import { createBroadcast, controlBroadcast, listBroadcasts } from "../../broadcast/broadcastStore.js"
import type { BroadcastRow } from "../../broadcast/broadcastStore.js"
import { SegmentInvalid } from "../../broadcast/segment.pure.js"
import type { NodeStores } from "../../runtime/stores.js"
import { storesFor } from "../hosted.js"
import { MessageText } from "../../telegram/bots/configSchema.pure.js"
import { printJson, printTable } from "../io.js"
import type { CliIo } from "../io.js"
import { runCommand, UsageError } from "../runtime.js"
import { asSubcommand } from "./botsCommand.js"
import { UnknownBot } from "../bots/lifecycle.js"
import { resolveBotRef } from "../bots/botRef.js"
import { Schema } from "effect"

type SetExit = (code: number) => void

/** Runs `body` with the stores and, when the command names a bot (by id or @username), its id. */
const withSql = <A>(io: CliIo, body: (s: NodeStores, botId: string | undefined) => Promise<A>, bot?: string) =>
  Effect.scoped(
    Effect.gen(function* () {
      const config = yield* AppConfig
      // inside the embedded node that holds DATA_DIR (a command sent to it): its own stores
      const s = yield* storesFor(io, config)
      const botId = bot === undefined ? undefined : yield* resolveBotRef(s, bot)
      return yield* Effect.tryPromise({ try: () => body(s, botId), catch: (e) => (e instanceof SegmentInvalid ? new UsageError({ detail: `--segment: ${e.message}` }) : e) })
    })
  )

const run = async (io: CliIo, setExit: SetExit, program: Effect.Effect<unknown, unknown, AppConfig>) =>
  setExit(await runCommand(program, undefined, { env: io.env, stderr: io.stderr }))

const print = (io: CliIo, rows: ReadonlyArray<BroadcastRow>, json: boolean) => {
  if (json) return printJson(io, rows)
  if (rows.length === 0) return io.stdout("no broadcasts (create one with botfleet broadcast create)")
  printTable(
    io,
    rows.map((r) => ({
      id: r.broadcastId,
      bot: r.botId,
      state: r.state,
      "not before": r.notBefore,
      total: r.total,
      queued: r.queued,
      sent: r.sent,
      blocked: r.blocked + r.skippedBlocked,
      failed: r.failed,
      pending: r.pending,
      segment: r.segment
    }))
  )
}

const idOf = (s: string): number => {
  if (!/^\d{1,12}$/.test(s)) throw new UsageError({ detail: `broadcast id ${JSON.stringify(s)} is not a number (botfleet broadcast list shows them)` })
  return Number(s)
}

/** `botfleet broadcast create|list|pause|resume|cancel` (docs/cli.md, docs/telegram.md "Broadcasts"). */
export const broadcastCommand = (io: CliIo, setExit: SetExit): Command => {
  const cmd = new Command("broadcast").description("send one message to a segment of a bot's users, within Telegram's limits: create, list, pause, resume, cancel")
  cmd.addCommand(
    asSubcommand(io, new Command("create")
      .description("create a broadcast; a running node sends it (30 messages/s per bot at most, each user at most once)")
      .argument("<bot>", "the bot's id, or its @username")
      .requiredOption("--segment <filter>", "which users: all, language=de, seen<7d, seen>30d, messages>=3 (comma: all of them)")
      .requiredOption("--text <text>", "the message (at most 4,096 characters)")
      .option("--at <time>", "not before this time (ISO-8601, e.g. 2026-12-24T09:00:00Z)")
      .option("--json", "print the result as JSON")
      .action(async (bot: string, opts: { segment: string; text: string; at?: string; json?: boolean }) => {
        const checked = Effect.gen(function* () {
          const text = Schema.decodeUnknownEither(MessageText)(opts.text)
          if (text._tag === "Left") return yield* new UsageError({ detail: "--text: must be 1 to 4096 characters (Telegram's limit for a message)" })
          const at = opts.at === undefined ? new Date() : new Date(opts.at)
          if (Number.isNaN(at.getTime()) || (opts.at !== undefined && !/^\d{4}-\d{2}-\d{2}T/.test(opts.at))) return yield* new UsageError({ detail: `--at: ${JSON.stringify(opts.at)} is not an ISO-8601 time` })
          return at
        })
        const program = Effect.flatMap(checked, (notBefore) =>
          withSql(io, async (s, botId = bot) => {
            const owner = await handoffPortsOf({ log: s.log, inbox: s.inbox }).ownerOf(botId)
            if (owner === null) throw new UnknownBot({ botId })
            const row = await createBroadcast(s.sql, { botId, ownerId: owner, text: opts.text, segment: opts.segment, notBefore })
            if (opts.json) printJson(io, row)
            else io.stdout(`broadcast ${row.broadcastId} created for bot ${botId}: ${row.total} recipients (${row.skippedBlocked} who blocked the bot left out), not before ${row.notBefore}`)
          }, bot)
        )
        await run(io, setExit, program)
      })
  ))
  cmd.addCommand(
    asSubcommand(io, new Command("list")
      .description("broadcasts with their progress (sent, blocked, failed, pending)")
      .argument("[bot]", "only this bot's (its id, or its @username)")
      .option("--json", "print as JSON")
      .action(async (bot: string | undefined, opts: { json?: boolean }) => {
        await run(io, setExit, withSql(io, async (s, botId) => print(io, await listBroadcasts(s.sql, botId), opts.json === true), bot))
      })
  ))
  for (const action of ["pause", "resume", "cancel"] as const) {
    cmd.addCommand(
      asSubcommand(io, new Command(action)
        .description(`${action} a broadcast (takes effect within the 60 messages already waiting in the bot's inbox)`)
        .argument("<id>", "the broadcast id")
        .option("--json", "print as JSON")
        .action(async (id: string, opts: { json?: boolean }) => {
          const program = Effect.flatMap(Effect.try({ try: () => idOf(id), catch: (e) => e as UsageError }), (n) =>
            withSql(io, async (s) => {
              const row = await controlBroadcast(s.sql, n, action)
              if (opts.json) printJson(io, row)
              else io.stdout(`broadcast ${n} is ${row.state}`)
            })
          )
          await run(io, setExit, program)
        })
    ))
  }
  return cmd
}
