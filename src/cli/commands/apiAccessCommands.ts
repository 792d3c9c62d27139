import { Command, Option as CliOption } from "commander"
import { Effect } from "effect"
import { addOwner, createToken, listOwners, listTokens, parseExpiry, revokeToken } from "../../api/auth/apiTokens.js"
import { AppConfig } from "../../config.js"
import { migrate } from "../../db/migrator.js"
import { Sql } from "../../db/sql.js"
import { printJson, printTable } from "../io.js"
import type { CliIo } from "../io.js"
import { runCommand, UsageError } from "../runtime.js"
import { sqlLayerFor } from "../hosted.js"
import { DatabaseUnavailable } from "./opsCommands.js"
import { asSubcommand } from "./botsCommand.js"

type SetExit = (code: number) => void

/** The database, migrated first in embedded mode (a fresh DATA_DIR has no tables yet; a running node migrated its own). */
const databaseOf = (io: CliIo) =>
  Effect.gen(function* () {
    const config = yield* AppConfig
    const sql = yield* Sql
    if (config.mode === "embedded" && io.host === undefined) yield* Effect.tryPromise({ try: () => migrate(sql), catch: (cause) => new DatabaseUnavailable({ cause }) })
    return sql
  })

const run = async (io: CliIo, setExit: SetExit, program: Effect.Effect<unknown, unknown, AppConfig | Sql>) =>
  setExit(await runCommand(program, sqlLayerFor(io), { env: io.env, stderr: io.stderr }))

/** `botfleet owners add|list`: the owners who may hold REST API tokens (docs/api.md). */
export const ownersCommand = (io: CliIo, setExit: SetExit): Command =>
  new Command("owners")
    .description("owners of bots who may use the REST API (their tokens: botfleet tokens)")
    .addCommand(
      asSubcommand(io, new Command("add")
        .description("record an owner (its id is the owner id its bots are registered under)")
        .argument("<ownerId>", "1 to 64 of A-Z a-z 0-9 _ . @ -")
        .option("--name <name>", "a display name")
        .option("--json", "print the result as JSON")
        .action(async (ownerId: string, opts: { name?: string; json?: boolean }) => {
          await run(io, setExit, Effect.gen(function* () {
            const sql = yield* databaseOf(io)
            const added = yield* addOwner(sql, ownerId, opts.name ?? null)
            if (opts.json) printJson(io, added)
            else io.stdout(`owner ${added.ownerId} added; make a token with: botfleet tokens create --owner ${added.ownerId}`)
          }))
        }))
    )
    .addCommand(
      asSubcommand(io, new Command("list")
        .description("the owners, with how many active tokens each has")
        .option("--json", "print as JSON")
        .action(async (opts: { json?: boolean }) => {
          await run(io, setExit, Effect.gen(function* () {
            const owners = yield* listOwners(yield* databaseOf(io))
            if (opts.json) return printJson(io, owners)
            if (owners.length === 0) return io.stdout("no owners yet (botfleet owners add <id>)")
            printTable(io, owners.map((o) => ({ owner: o.ownerId, name: o.name ?? "", "active tokens": o.activeTokens, created: o.createdAt })))
          }))
        }))
    )

/** `botfleet tokens create|list|revoke`: REST API tokens, shown once, stored hashed. */
export const tokensCommand = (io: CliIo, setExit: SetExit): Command =>
  new Command("tokens")
    .description("REST API tokens (Authorization: Bearer): create (shown once), list, revoke")
    .addCommand(
      asSubcommand(io, new Command("create")
        .description("make a token for an owner (--owner) or for ops (--admin); printed once, only its hash is kept")
        .option("--owner <id>", "the owner the token acts for")
        .option("--admin", "an ops token: fleet status, dead letters, audit verify; no owner's data")
        .addOption(new CliOption("--scope <scope>", "what an owner token may do").choices(["read", "write"]).default("read"))
        .option("--expires <when>", "a duration (30d, 12h, 90m) or an ISO date; default: never")
        .option("--label <text>", "a note shown in tokens list")
        .option("--json", "print the result as JSON")
        .action(async (opts: { owner?: string; admin?: boolean; scope: "read" | "write"; expires?: string; label?: string; json?: boolean }) => {
          await run(io, setExit, Effect.gen(function* () {
            if ((opts.owner === undefined) === (opts.admin !== true)) return yield* new UsageError({ detail: "give either --owner <id> or --admin" })
            const expiresAt = opts.expires === undefined ? null : parseExpiry(opts.expires, Date.now())
            if (opts.expires !== undefined && expiresAt === null) return yield* new UsageError({ detail: `--expires ${JSON.stringify(opts.expires)}: expected a duration (30d, 12h, 90m) or a future ISO date` })
            const made = yield* createToken(yield* databaseOf(io), {
              ownerId: opts.owner ?? null,
              scope: opts.admin === true ? "admin" : opts.scope,
              expiresAt,
              label: opts.label ?? null
            })
            if (opts.json) return printJson(io, made)
            io.stdout(made.token)
            io.stderr(`token ${made.tokenId} (${made.scope}${made.ownerId ? ` for owner ${made.ownerId}` : ""}${made.expiresAt ? `, expires ${made.expiresAt}` : ""}): copy it now, it is not shown again`)
          }))
        }))
    )
    .addCommand(
      asSubcommand(io, new Command("list")
        .description("tokens (never their secret): owner, scope, created, expires, revoked, last used")
        .option("--owner <id>", "only this owner's tokens")
        .option("--json", "print as JSON")
        .action(async (opts: { owner?: string; json?: boolean }) => {
          await run(io, setExit, Effect.gen(function* () {
            const tokens = yield* listTokens(yield* databaseOf(io), opts.owner)
            if (opts.json) return printJson(io, tokens)
            if (tokens.length === 0) return io.stdout("no tokens (botfleet tokens create --owner <id>)")
            printTable(io, tokens.map((t) => ({
              token: t.tokenId,
              owner: t.ownerId ?? "(admin)",
              scope: t.scope,
              label: t.label ?? "",
              created: t.createdAt,
              expires: t.expiresAt ?? "never",
              revoked: t.revokedAt ?? "-",
              "last used": t.lastUsedAt ?? "never"
            })))
          }))
        }))
    )
    .addCommand(
      asSubcommand(io, new Command("revoke")
        .description("revoke a token for good: its next request is refused (401)")
        .argument("<tokenId>", "the token's id (botfleet tokens list)")
        .option("--json", "print the result as JSON")
        .action(async (tokenId: string, opts: { json?: boolean }) => {
          await run(io, setExit, Effect.gen(function* () {
            const r = yield* revokeToken(yield* databaseOf(io), tokenId)
            if (opts.json) printJson(io, r)
            else io.stdout(`token ${r.tokenId} revoked (${r.revokedAt})`)
          }))
        }))
    )
