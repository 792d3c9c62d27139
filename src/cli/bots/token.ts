import { Data, Effect, Redacted } from "effect"
import type { CliIo } from "../io.js"

/** No token given: neither BOT_TOKEN nor a piped stdin. */
export class TokenMissing extends Data.TaggedError("TokenMissing")<{ readonly botId: string }> {
  override get message() {
    return `bot ${this.botId}: no token given. Pipe it on stdin (e.g. botfleet bots add ${this.botId} --owner me < token.txt) or set BOT_TOKEN; it is never a command-line argument, so it stays out of shell history and process lists.`
  }
}

const readStdin = (): Promise<string> =>
  new Promise((resolve, reject) => {
    const chunks: Array<Buffer> = []
    process.stdin.on("data", (c: Buffer) => chunks.push(c))
    process.stdin.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")))
    process.stdin.on("error", reject)
  })

/**
 * The bot token, wrapped at once in Redacted so it cannot reach a log or an error message: from
 * BOT_TOKEN, else from stdin when stdin is not a terminal (never from an argument).
 */
export const readToken = (io: CliIo, botId: string): Effect.Effect<Redacted.Redacted<string>, TokenMissing> =>
  Effect.gen(function* () {
    const fromEnv = io.env["BOT_TOKEN"]?.trim()
    if (fromEnv) return Redacted.make(fromEnv)
    // inside the node, for another process: that process read its own stdin into BOT_TOKEN (cli/remote)
    if (io.host !== undefined || process.stdin.isTTY === true) return yield* new TokenMissing({ botId })
    const piped = (yield* Effect.promise(() => readStdin().catch(() => ""))).trim()
    if (piped === "") return yield* new TokenMissing({ botId })
    return Redacted.make(piped)
  })
