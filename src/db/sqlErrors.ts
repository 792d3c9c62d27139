import { Data } from "effect"

/**
 * Why Postgres could not run a statement, when the statement itself is not at fault:
 * - `connection-lost`: the connection broke mid-way (terminated backend, network cut, restart);
 * - `unreachable`: no connection could be made (refused, timed out, DNS);
 * - `shutting-down`: the server is stopping or starting (57P01/57P02/57P03);
 * - `closed`: this client was closed by its owner (a bug of the caller: not retryable).
 */
export type SqlUnavailableReason = "connection-lost" | "unreachable" | "shutting-down" | "closed"

/**
 * Postgres is unavailable, not the statement wrong: retrying the same statement later is safe
 * (nothing was committed: a transaction that saw this rolled back), except after `closed`.
 * Everything else (constraint violations, syntax, serialisation failures) keeps pg's own error.
 */
export class SqlUnavailable extends Data.TaggedError("SqlUnavailable")<{
  readonly reason: SqlUnavailableReason
  /** host:port/database, never credentials. */
  readonly address: string
  /** The SQLSTATE the server sent, if it sent one. */
  readonly code: string | undefined
  readonly cause: unknown
}> {
  get retryable(): boolean {
    return this.reason !== "closed"
  }
  override get message() {
    const cause = this.cause instanceof Error ? this.cause.message : String(this.cause)
    return `postgres at ${this.address} unavailable (${this.reason}): ${cause}`
  }
}

const NETWORK_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EPIPE", "EHOSTUNREACH", "ENETUNREACH", "ENOTFOUND", "EAI_AGAIN", "ECONNABORTED"])

/** pg's own messages for a connection that broke or never came (it sends no SQLSTATE for these). */
const LOST = [/connection terminated/i, /not queryable/i]
const UNREACHABLE = [/timeout exceeded when trying to connect/i, /connection timeout/i]

/**
 * Whether a pg error says "the server is unavailable" (and why) rather than "this statement is
 * wrong": null for every error a retry would repeat. `closedHere`: the caller closed the client.
 */
export const unavailableReason = (e: unknown, closedHere = false): SqlUnavailableReason | null => {
  if (typeof e !== "object" || e === null) return null
  if ((e as { _tag?: unknown })._tag === "SqlUnavailable") return null
  const message = e instanceof Error ? e.message : ""
  if (closedHere || /after calling end on the pool/i.test(message)) return "closed"
  const code = typeof (e as { code?: unknown }).code === "string" ? (e as { code: string }).code : undefined
  if (code !== undefined && /^[0-9A-Z]{5}$/.test(code)) {
    if (code === "57P01" || code === "57P02" || code === "57P03") return "shutting-down"
    if (code.startsWith("08")) return code === "08001" || code === "08004" ? "unreachable" : "connection-lost"
    return null
  }
  if (code !== undefined && NETWORK_CODES.has(code)) return code === "ECONNREFUSED" || code === "ENOTFOUND" || code === "EAI_AGAIN" || code === "EHOSTUNREACH" || code === "ENETUNREACH" ? "unreachable" : "connection-lost"
  if (UNREACHABLE.some((r) => r.test(message))) return "unreachable"
  if (LOST.some((r) => r.test(message))) return "connection-lost"
  return null
}

/** The SQLSTATE of a pg error, if it has one. */
export const sqlState = (e: unknown): string | undefined => {
  const code = typeof e === "object" && e !== null ? (e as { code?: unknown }).code : undefined
  return typeof code === "string" && /^[0-9A-Z]{5}$/.test(code) ? code : undefined
}

/** host:port/database of a connection string, without user or password (for logs and errors). */
export const pgAddress = (connectionString: string): string => {
  try {
    const u = new URL(connectionString)
    const db = u.pathname.replace(/^\//, "")
    return `${u.hostname || "localhost"}:${u.port || "5432"}${db ? `/${db}` : ""}`
  } catch {
    return "(unparsable DATABASE_URL)"
  }
}
