import { Effect } from "effect"
import { inRole } from "../../db/roles.js"
import { Sql } from "../../db/sql.js"
import type { SqlClient } from "../../db/sql.js"
import type { LogUnavailable } from "../../events/errors.js"
import { EventLog } from "../../events/eventLog.js"
import type { EventLogService } from "../../events/eventLog.js"
import { BOT_ID_PATTERN } from "../../events/partition.js"
import { demoBotNamed } from "../../runtime/demoFleet.js"
import { UsageError } from "../runtime.js"

/*
 * Every command that takes a bot takes the name people see for it as well as its id: the banner,
 * the chat page and `bots list` show `demo-sunny` with `@sunny_demo_bot`, so `botfleet tail
 * demo-sunny`, `botfleet tail @sunny_demo_bot` and `botfleet tail sunny_demo_bot` are one bot.
 */

/** Bot ids whose recorded name (the Telegram username unless registered under another) is `name`, live bots first. */
const idsNamed = (sql: SqlClient, name: string) =>
  Effect.tryPromise(() =>
    // the projector's role sees every owner's rows (the CLI acts for ops, not for one owner)
    inRole(sql, { role: "projector" }, async (tx) =>
      (await tx.query<{ bot_id: string; live: boolean }>(
        "SELECT bot_id, removed_at IS NULL AS live FROM bots WHERE lower(name) = lower($1) ORDER BY (removed_at IS NULL) DESC, bot_id LIMIT 10",
        [name]
      )).rows
    )
  ).pipe(
    // no projections to ask (not migrated yet, unreachable): the name is not known there, and the
    // command goes on with what it was given, which fails as an unknown bot if it is one
    Effect.orElseSucceed(() => [] as ReadonlyArray<{ bot_id: string; live: boolean }>)
  )

/**
 * The id of the bot `ref` names: an id whose stream has events is itself; otherwise a name
 * (`@name` or `name`, any case) the bots projection records for exactly one live bot, or a demo
 * bot's; otherwise `ref` as given when it is a valid id (the command then reports an unknown bot
 * in its own words). A name two live bots share, or an `@name` no bot has, is a usage error that
 * says what to give instead.
 */
export const resolveBotRef = (o: { readonly log: EventLogService; readonly sql: SqlClient | null }, ref: string): Effect.Effect<string, UsageError | LogUnavailable> =>
  Effect.gen(function* () {
    const named = ref.startsWith("@")
    const name = named ? ref.slice(1) : ref
    if (!named && BOT_ID_PATTERN.test(ref) && (yield* o.log.streamVersion(ref)) > 0) return ref
    const rows = o.sql === null || name === "" ? [] : yield* idsNamed(o.sql, name)
    const live = rows.filter((r) => r.live)
    if (live.length > 1) {
      return yield* new UsageError({ detail: `several bots are named ${name} (${live.map((r) => r.bot_id).join(", ")}): give the bot's id` })
    }
    const found = rows[0]?.bot_id ?? demoBotNamed(ref)?.botId
    if (found !== undefined) return found
    if (named || !BOT_ID_PATTERN.test(ref)) {
      return yield* new UsageError({ detail: `no bot is named ${JSON.stringify(ref)}: give a bot's id or its @username (botfleet bots list shows both)` })
    }
    return ref
  })

/** `resolveBotRef` with the command's own log and database (commands run with eventLogAndSqlLayer). */
export const resolveBot = (ref: string) =>
  Effect.flatMap(Effect.all([EventLog, Sql]), ([log, sql]) => resolveBotRef({ log, sql }, ref))
