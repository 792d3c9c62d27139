import type { FastifyReply, FastifyRequest } from "fastify"
import type { InboxService } from "../../actors/inbox.js"
import type { SqlClient, SqlTx } from "../../db/sql.js"
import { inRole } from "../../db/roles.js"
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
 * THE way an owner route reads the database: one transaction as the `botfleet_api` role with
 * `app.owner_id` set to the caller's owner, so row-level security decides what it sees. Handlers
 * never filter by owner themselves; a query that forgot to could still not see another owner's
 * rows.
 */
export const asOwner = <A>(deps: ApiDeps, req: FastifyRequest, fn: (tx: SqlTx) => Promise<A>): Promise<A> =>
  inRole(deps.sql, { role: "api", ownerId: ownerOf(req) }, fn)

/** 404 unless the caller's owner can see the bot (its projection row, under row-level security). */
export const visibleBot = async (tx: SqlTx, botId: string): Promise<void> => {
  const { rows } = await tx.query("SELECT 1 FROM bots WHERE bot_id = $1", [botId])
  if (rows.length === 0) throw new ApiError({ status: 404, code: "not_found", detail: `bot ${botId} not found` })
}

export const created = (reply: FastifyReply) => reply.code(201)
