import { Data, Either } from "effect"
import { parseOwnerId } from "../events/ownerId.js"
import type { QueryResult, SqlClient, SqlTx, Statement } from "./sql.js"

/*
 * Least privilege on one login: each unit of work runs in a transaction that first switches to the
 * role made for it (`SET LOCAL ROLE`, through set_config so it takes parameters) and sets its owner
 * scope with `set_config(..., true)`. Both end with the transaction, so a pooled connection never
 * carries a role or an owner into the next one. Works alike on a Postgres server and on PGlite.
 * docs/projections.md ("Roles and row-level security") says what this does and does not protect.
 */

/** The database roles (sql/0010, sql/0040). All NOLOGIN: logins are granted them. */
export const DB_ROLES = {
  migrator: "botfleet_migrator",
  projector: "botfleet_projector",
  api: "botfleet_api",
  auditor: "botfleet_auditor",
  runtime: "botfleet_runtime"
} as const

/** What a transaction runs as, and for whom. */
export type RoleScope =
  /** Projection writes: every owner's rows (the projector's own policy). */
  | { readonly role: "projector" }
  /** API reads: the rows of one owner (row-level security on `app.owner_id`). */
  | { readonly role: "api"; readonly ownerId: string }
  /** Audit reads and anchors: the audit log of the listed owners (`app.owner_ids`, a JSON array). */
  | { readonly role: "auditor"; readonly ownerIds: ReadonlyArray<string> }

/**
 * The transaction could not take its role: the login is not a member of it (`GRANT botfleet_api
 * TO <login>`), or the role does not exist (migrations not applied). Not the data's fault: callers
 * retry or stop, they never dead-letter anything over it. Carries no SQLSTATE, so
 * `isTransientSqlError` counts it as retryable.
 */
export class RoleSwitchFailed extends Data.TaggedError("RoleSwitchFailed")<{
  readonly role: string
  readonly cause: unknown
}> {
  override get message() {
    const cause = this.cause instanceof Error ? this.cause.message : String(this.cause)
    return `cannot run as ${this.role}: ${cause} (grant it to the login: GRANT ${this.role} TO <login>; migrations create it)`
  }
}

const settingsOf = (scope: RoleScope): { role: string; ownerId: string; ownerIds: string } => {
  switch (scope.role) {
    case "projector":
      return { role: DB_ROLES.projector, ownerId: "", ownerIds: "" }
    case "api": {
      const owner = parseOwnerId(scope.ownerId)
      if (Either.isLeft(owner)) throw owner.left
      return { role: DB_ROLES.api, ownerId: owner.right, ownerIds: "" }
    }
    case "auditor": {
      for (const o of scope.ownerIds) {
        const owner = parseOwnerId(o)
        if (Either.isLeft(owner)) throw owner.left
      }
      return { role: DB_ROLES.auditor, ownerId: "", ownerIds: JSON.stringify(scope.ownerIds) }
    }
  }
}

/**
 * THE way to run database work as one of botfleet's roles: `fn` runs in one transaction on one
 * connection, as `scope.role`, seeing what that role's row-level security lets it see for the
 * owner(s) given, and nothing else. Guarantees:
 * - owner ids are validated first (rejects with OwnerIdInvalid, nothing run);
 * - the role and both owner settings are set in the transaction's first statement and are reset
 *   by its end (commit or rollback): the next transaction on the connection starts clean; a scope
 *   sets the owner setting it does not use to '' so nothing set earlier on the session applies;
 * - a login that cannot take the role fails with RoleSwitchFailed before `fn` runs;
 * - `fn`'s own failures reject with their own error, after a rollback.
 * `fn` must use its `tx` only (on PGlite the client waits for the transaction).
 */
export const inRole = async <A>(sql: SqlClient, scope: RoleScope, fn: (tx: SqlTx) => Promise<A>): Promise<A> => {
  const s = settingsOf(scope)
  const enter = enterRole(s)
  return sql.transaction(async (tx) => {
    try {
      await tx.query(enter.text, enter.params)
    } catch (cause) {
      throw new RoleSwitchFailed({ role: s.role, cause })
    }
    return fn(tx)
  })
}

/** The first statement of a transaction run as a role: the role and both owner settings, transaction-local. */
const enterRole = (s: { role: string; ownerId: string; ownerIds: string }): Statement => ({
  name: "bf_enter_role",
  text: "SELECT set_config('role', $1, true), set_config('app.owner_id', $2, true), set_config('app.owner_ids', $3, true)",
  params: [s.role, s.ownerId, s.ownerIds]
})

/**
 * Postgres refusing the role itself: not a member (42501 "permission denied to set role") or no
 * such role (22023). A statement of the batch refused for its own reasons (a table the role may
 * not read: 42501 "permission denied for table") is not one.
 */
const isRoleRefusal = (e: unknown): boolean => {
  const code = typeof e === "object" && e !== null ? (e as { code?: unknown }).code : undefined
  const message = e instanceof Error ? e.message : ""
  return (code === "42501" && /permission denied to set role/.test(message)) || (code === "22023" && /^role ".*" does not exist$/.test(message))
}

/**
 * `inRole` for reads that need no JavaScript between their statements: the role statement and
 * `statements` run in one transaction through `SqlClient.batch`, so on a Postgres server the whole
 * transaction (BEGIN, role and owner settings, the reads, COMMIT) is one round trip. Same
 * guarantees as `inRole`: owner ids validated first, the settings transaction-local and set before
 * any statement of the batch is even parsed (the server takes the pipelined statements in order,
 * and row-level security is applied when a statement is planned, as the role it runs as), a login
 * that cannot take the role fails with RoleSwitchFailed; a statement's own failure rejects with
 * its own error, after a rollback. Returns the results of `statements`, in order.
 */
export const readInRole = async (sql: SqlClient, scope: RoleScope, statements: ReadonlyArray<Statement>): Promise<ReadonlyArray<QueryResult>> => {
  const s = settingsOf(scope)
  try {
    return (await sql.batch([enterRole(s), ...statements])).slice(1)
  } catch (cause) {
    throw isRoleRefusal(cause) ? new RoleSwitchFailed({ role: s.role, cause }) : cause
  }
}

/**
 * The roles a node switches to that its login cannot take, as `GRANT` statements to run; empty
 * when it can take them all. A superuser can take any role.
 */
export const missingRoleGrants = async (sql: SqlClient, roles: ReadonlyArray<string> = [DB_ROLES.projector, DB_ROLES.api, DB_ROLES.auditor]): Promise<ReadonlyArray<string>> => {
  const { rows } = await sql.query<{ role: string; login: string; member: boolean | null }>(
    `SELECT r AS role, quote_ident(current_user) AS login,
            CASE WHEN EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN pg_has_role(current_user, r, 'MEMBER') END AS member
       FROM unnest($1::text[]) AS r`,
    [roles]
  )
  return rows.filter((r) => r.member !== true).map((r) => (r.member === null ? `-- role ${r.role} does not exist: run botfleet migrate` : `GRANT ${r.role} TO ${r.login};`))
}
