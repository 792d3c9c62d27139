import { createReadStream } from "node:fs"
import { open } from "node:fs/promises"
import { createInterface } from "node:readline"
import { Data, Effect } from "effect"
import type { AppendError, InvalidEvent, LogUnavailable } from "../events/errors.js"
import { EventLog } from "../events/eventLog.js"
import type { NewEvent } from "../events/schema/envelope.js"
import { BotBusy } from "./import/errors.js"
import { exportLine } from "./eventText.pure.js"
import { readStreamRange } from "./streamReader.js"

/*
 * `botfleet events <bot> --export/--import`: a bot's stream as ndjson, one envelope per line, to
 * share a stream and debug it locally. Tokens stay as they are in the log: ciphertext only.
 */

export class TransferFailed extends Data.TaggedError("TransferFailed")<{ readonly file: string; readonly line?: number; readonly reason: string }> {
  override get message() {
    return `${this.file}${this.line ? `:${this.line}` : ""}: ${this.reason}`
  }
}

/** Writes the bot's stream to `file`; returns the number of events written. */
export const exportEvents = (
  botId: string,
  file: string,
  onProgress?: (done: number, total: number) => void
): Effect.Effect<number, TransferFailed | LogUnavailable | InvalidEvent, EventLog> =>
  Effect.gen(function* () {
    const log = yield* EventLog
    const total = yield* log.streamVersion(botId)
    const handle = yield* Effect.tryPromise({ try: () => open(file, "wx"), catch: (e) => new TransferFailed({ file, reason: `cannot create the file (${(e as NodeJS.ErrnoException).code ?? String(e)}); it must not exist yet` }) })
    let written = 0
    const write = (text: string) => Effect.tryPromise({ try: () => handle.write(text), catch: (e) => new TransferFailed({ file, reason: String(e) }) })
    yield* Effect.gen(function* () {
      for (let from = 1; from <= total; from += 5000) {
        const page = yield* readStreamRange(log, botId, { from, to: Math.min(total, from + 4999) })
        if (page.length > 0) yield* write(page.map(exportLine).join("\n") + "\n")
        written += page.length
        onProgress?.(written, total)
      }
    }).pipe(Effect.ensuring(Effect.promise(() => handle.close())))
    return written
  })

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v)

/**
 * Appends the events of an ndjson export to a bot with no events yet, keeping event ids, times,
 * correlation and actors; the versions in the file must run 1, 2, 3... Everything is validated
 * first and written in one append: all or nothing.
 */
export const importEvents = (
  botId: string,
  file: string
): Effect.Effect<number, TransferFailed | BotBusy | AppendError | LogUnavailable, EventLog> =>
  Effect.gen(function* () {
    const log = yield* EventLog
    const events = yield* Effect.tryPromise({
      try: async () => {
        const out: Array<NewEvent> = []
        const lines = createInterface({ input: createReadStream(file, "utf8"), crlfDelay: Infinity })
        let n = 0
        for await (const line of lines) {
          n++
          if (line.trim() === "") continue
          let e: unknown
          try {
            e = JSON.parse(line)
          } catch (err) {
            throw new TransferFailed({ file, line: n, reason: `not a JSON line: ${(err as Error).message}` })
          }
          if (!isRecord(e) || !isRecord(e["data"]) || typeof e["type"] !== "string") {
            throw new TransferFailed({ file, line: n, reason: "expected an exported event envelope ({eventId, version, type, data, ...})" })
          }
          if (e["version"] !== out.length + 1) {
            throw new TransferFailed({ file, line: n, reason: `expected version ${out.length + 1}, got ${JSON.stringify(e["version"])}: the export must hold a whole stream in order` })
          }
          out.push({
            data: { ...e["data"], _tag: e["type"] } as NewEvent["data"],
            ...(typeof e["eventId"] === "string" ? { eventId: e["eventId"] } : {}),
            occurredAt: String(e["occurredAt"]),
            correlationId: String(e["correlationId"]),
            causationId: typeof e["causationId"] === "string" ? e["causationId"] : null,
            actor: String(e["actor"])
          })
        }
        return out
      },
      catch: (e) => (e instanceof TransferFailed ? e : new TransferFailed({ file, reason: `cannot read the file (${(e as NodeJS.ErrnoException).code ?? String(e)})` }))
    })
    if (events.length === 0) return 0
    const existing = yield* log.streamVersion(botId)
    if (existing > 0) {
      return yield* new TransferFailed({ file, reason: `bot ${botId} already has ${existing} events: import into a new bot id (botfleet events <new-id> --import ${file})` })
    }
    const lease = yield* log.acquireLease(botId, "events-import", 120_000)
    if (!lease) return yield* new BotBusy({ botId, nodeId: (yield* log.readLease(botId))?.nodeId ?? "another node" })
    const r = yield* log.append({ botId, expectedVersion: 0, fence: lease.fence, events }).pipe(Effect.ensuring(log.releaseLease(lease).pipe(Effect.ignore)))
    return r.version
  })
