import { Effect } from "effect"
import { fold, initialState } from "../../actors/decider/state.js"
import type { BotState } from "../../actors/decider/state.js"
import { inRole } from "../../db/roles.js"
import { Sql } from "../../db/sql.js"
import type { InvalidEvent, LogUnavailable } from "../../events/errors.js"
import { EventLog } from "../../events/eventLog.js"
import { BotNotFound, ImportRefused, ProjectionsUnreadable } from "./errors.js"
import { readLegacyFiles, sha256 } from "./importer.js"
import { mergeFiles } from "./plan.pure.js"
import { recordSlot, verifyImport } from "./verify.pure.js"
import type { ProjectedImport, VerifyReport } from "./verify.pure.js"

export interface VerifyOptions {
  readonly botId: string
  readonly files: ReadonlyArray<string>
  readonly pageSize?: number
  readonly onProgress?: (phase: "read" | "fold" | "projections", done: number, total: number) => void
}

export interface VerifyResult extends VerifyReport {
  readonly botId: string
  readonly records: number
}

/** The bot's state as its last import event left it, and the session keys the bot changed after. */
const foldAtImport = (botId: string, pageSize: number, onPage: (done: number, total: number) => void) =>
  Effect.gen(function* () {
    const log = yield* EventLog
    const last = yield* log.streamVersion(botId)
    if (last === 0) return yield* new BotNotFound({ botId })
    let state: BotState = initialState
    let atImport: { state: BotState; version: number } = { state: initialState, version: 0 }
    let changedAfter = new Set<string>()
    let next = 1
    while (next <= last) {
      const page = yield* log.readStream(botId, { from: next, limit: Math.min(pageSize, last - next + 1) })
      if (page.length === 0) break
      for (const e of page) {
        state = fold([e.data], state)
        if (e.data._tag === "LegacyRecordImported") {
          atImport = { state, version: e.version }
          changedAfter = new Set()
        } else if (e.data._tag === "SessionChanged") changedAfter.add(e.data.key)
      }
      next = page[page.length - 1]!.version + 1
      onPage(next - 1, last)
    }
    return { ...atImport, ownerId: state.ownerId, changedAfter }
  })

/** What the projections show of the bot, read as its owner (row-level security applies). */
const readProjections = (botId: string, ownerId: string) =>
  Effect.gen(function* () {
    const sql = yield* Sql
    return yield* Effect.tryPromise({
      try: () =>
        inRole(sql, { role: "api", ownerId }, async (tx): Promise<ProjectedImport> => {
          const records = await tx.query<{ collection: string; record_key: string; record: unknown }>(
            "SELECT collection, record_key, record FROM imported_records WHERE bot_id = $1", [botId])
          const sessions = await tx.query<{ session_key: string; data: unknown; version: number }>(
            "SELECT session_key, data, version FROM bot_sessions WHERE bot_id = $1", [botId])
          const users = await tx.query<{ id: string }>("SELECT user_id::text AS id FROM bot_users WHERE bot_id = $1", [botId])
          const chats = await tx.query<{ id: string }>("SELECT chat_id::text AS id FROM chats WHERE bot_id = $1", [botId])
          return {
            records: new Map(records.rows.map((r) => [recordSlot(r.collection, r.record_key), r.record])),
            sessions: new Map(sessions.rows.map((r) => [r.session_key, { data: r.data, version: r.version }])),
            users: new Set(users.rows.map((r) => Number(r.id))),
            chats: new Set(chats.rows.map((r) => Number(r.id)))
          }
        }),
      catch: (cause) => new ProjectionsUnreadable({ botId, cause })
    })
  })

/**
 * `botfleet import <bot> <files...> --verify`: writes nothing; compares every record of the files
 * with the bot's state as its last import left it (folded from the stream) and with the
 * projections (imported_records, bot_sessions, bot_users, chats), per collection and per record.
 */
export const verifyLegacyImport = (
  options: VerifyOptions
): Effect.Effect<VerifyResult, ImportRefused | BotNotFound | ProjectionsUnreadable | LogUnavailable | InvalidEvent, EventLog | Sql> =>
  Effect.gen(function* () {
    const parsed = yield* readLegacyFiles(options.files, sha256, (done, total) => options.onProgress?.("read", done, total))
    const merged = mergeFiles(parsed)
    if (!merged.ok) return yield* new ImportRefused({ problems: merged.problems })
    const folded = yield* foldAtImport(options.botId, options.pageSize ?? 2000, (done, total) => options.onProgress?.("fold", done, total))
    options.onProgress?.("projections", 0, 1)
    // a bot without an owner has no projected rows any owner could see
    const projected = yield* readProjections(options.botId, folded.ownerId ?? "")
    options.onProgress?.("projections", 1, 1)
    const report = verifyImport(merged.records, folded.state.entries, folded.version, folded.changedAfter, projected, sha256)
    return { botId: options.botId, records: merged.records.length, ...report }
  })
