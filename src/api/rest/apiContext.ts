import type { FastifyReply, FastifyRequest } from "fastify"
import type { InboxService } from "../../actors/inbox.js"
import type { QueryResult, SqlClient, SqlTx, Statement } from "../../db/sql.js"
import { inRole, readInRole } from "../../db/roles.js"
import type { DeadLetter, EventLogService } from "../../events/eventLog.js"
import type { Effect } from "effect"
import type { Principal } from "../auth/apiTokens.js"
import type { KeyCache } from "../../privacy/keyCache.js"
import { ApiError } from "./apiErrors.js"
import type { BotWrites } from "./botWrites.js"

/** What the REST API needs from the node (ports, so a test can build it over its own stores). */
export interface ApiDeps {
  readonly sql: SqlClient
  readonly log: EventLogService
  readonly inbox: InboxService
  readonly writes: BotWrites
  readonly partitions: number
  /** Gives a dead-lettered log entry another chance (the log's own way: Redis or Postgres). */
  readonly retryDeadLetter: (d: DeadLetter) => Effect.Effect<void, unknown>
  /** Key the audit chain's anchors are signed with (audit verify). */
  readonly anchorKey: Uint8Array
  readonly nodeId: string
  /** Requests per token (or per address without one) per minute; 0: unlimited. */
  readonly rateLimitPerMinute: number
  /** Opens the sealed personal fields of archived events (docs/privacy.md); absent: they are shown sealed. */
  readonly keyCache?: KeyCache
  /** One line per answered request: method, route, status, time, token id (never the token). */
  readonly logRequest?: (line: Readonly<Record<string, unknown>>) => void
}

/** Who is calling, set by the auth hook before any handler of a protected route runs. */
export const principalOf = (req: FastifyRequest): Principal => {
  const p = (req as FastifyRequest & { principal?: Principal }).principal
  if (p === undefined) throw new ApiError({ status: 401, code: "unauthorized", detail: "an API token is required" })
  return p
}

/** The caller's owner id (owner routes only admit owner tokens: checked by the auth hook). */
export const ownerOf = (req: FastifyRequest): string => {
  const p = principalOf(req)
  if (p.ownerId === null) throw new ApiError({ status: 403, code: "owner_token_required", detail: "this route acts for an owner: use an owner's token" })
  return p.ownerId
}

/**
 * THE way an owner route uses the database: one transaction as the `botfleet_api` role with
 * `app.owner_id` set to the caller's owner, so row-level security decides what it sees. Handlers
 * never filter by owner themselves; a query that forgot to could still not see another owner's
 * rows. Reads whose statements need no JavaScript between them use `readAsOwner` (the same, in one
 * round trip); this one is for work that decides between statements.
 */
export const asOwner = <A>(deps: ApiDeps, req: FastifyRequest, fn: (tx: SqlTx) => Promise<A>): Promise<A> =>
  inRole(deps.sql, { role: "api", ownerId: ownerOf(req) }, fn)

/**
 * The bot a route names, as the caller's owner sees it (its projection row, under row-level
 * security), by its id or by its name (the Telegram username unless it was registered under
 * another), with or without the @: `demo-sunny`, `@sunny_demo_bot`, `sunny_demo_bot`. Returns its
 * id; 404 unless the owner has such a bot, 409 when several of the owner's bots have the name.
 * The id is looked up first, by primary key, so naming a bot by id costs what it did before.
 */
export const visibleBot = async (tx: SqlTx, ref: string): Promise<string> => {
  if (!ref.startsWith("@")) {
    const { rows } = await tx.query("SELECT 1 FROM bots WHERE bot_id = $1", [ref])
    if (rows.length > 0) return ref
  }
  const { rows } = await tx.query<{ bot_id: string }>(
    "SELECT bot_id FROM bots WHERE lower(name) = lower($1) ORDER BY (removed_at IS NULL) DESC, bot_id LIMIT 2",
    [ref.replace(/^@/, "")]
  )
  if (rows.length === 0) throw new ApiError({ status: 404, code: "not_found", detail: `bot ${ref} not found` })
  if (rows.length > 1) throw new ApiError({ status: 409, code: "ambiguous_bot", detail: `several of your bots are named ${ref.replace(/^@/, "")}: name the bot by its id` })
  return rows[0]!.bot_id
}

/**
 * The read routes' way: `statements` in one transaction as `botfleet_api` for the caller's owner,
 * exactly as `asOwner`, but sent together (`readInRole`: one round trip to a Postgres server).
 */
export const readAsOwner = (deps: ApiDeps, req: FastifyRequest, statements: ReadonlyArray<Statement>): Promise<ReadonlyArray<QueryResult>> =>
  readInRole(deps.sql, { role: "api", ownerId: ownerOf(req) }, statements)

/** The bot's projection row if the caller's owner can see it (under row-level security): see `readForBot`. */
export const botVisible = (botId: string): Statement => ({ name: "bf_api_bot_visible", text: "SELECT 1 FROM bots WHERE bot_id = $1", params: [botId] })

/**
 * A read for the bot a route names (`ref`: its id, or its name as `visibleBot` takes it), done in
 * one round trip when `ref` is the id of a bot the caller sees: `read(botId)` answers null when
 * its visibility check found no such bot. Only then is the name looked up (another round trip),
 * and the read done again for the id it names; 404 / 409 as `visibleBot`.
 */
export const readForBot = async <R>(deps: ApiDeps, req: FastifyRequest, ref: string, read: (botId: string) => Promise<R | null>): Promise<R> => {
  if (!ref.startsWith("@")) {
    const byId = await read(ref)
    if (byId !== null) return byId
  }
  const botId = await asOwner(deps, req, (tx) => visibleBot(tx, ref))
  const r = await read(botId)
  if (r === null) throw new ApiError({ status: 404, code: "not_found", detail: `bot ${ref} not found` })
  return r
}

export const created = (reply: FastifyReply) => reply.code(201)
