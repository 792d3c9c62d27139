import { Data } from "effect"
import { formatProblem } from "./records.pure.js"
import type { ImportProblem } from "./records.pure.js"

/** Input refused before anything was written: every problem names the file, the JSON path and the reason. */
export class ImportRefused extends Data.TaggedError("ImportRefused")<{
  readonly problems: ReadonlyArray<ImportProblem>
}> {
  override get message() {
    return [
      `import refused, nothing was written: ${this.problems.length} problem${this.problems.length === 1 ? "" : "s"} in the input`,
      ...this.problems.map((p) => `  ${formatProblem(p)}`),
      "Fix the files (see docs/import.md for the layouts) and run the import again."
    ].join("\n")
  }
}

/** The bot has no stream yet: a legacy import adds to a registered bot. */
export class BotNotFound extends Data.TaggedError("BotNotFound")<{ readonly botId: string }> {
  override get message() {
    return `bot ${this.botId} has no events: register it first (botfleet bots add, or the REST API), then import into it`
  }
}

/** Another node holds the bot's lease: importing now would race the running bot. */
export class BotBusy extends Data.TaggedError("BotBusy")<{ readonly botId: string; readonly nodeId: string }> {
  override get message() {
    return `bot ${this.botId} is running on node ${this.nodeId}: stop it (botfleet bots stop ${this.botId}), import, then start it again`
  }
}

/** A large import stopped part way (log unavailable, lease lost): what was written stays; re-running finishes it. */
export class ImportInterrupted extends Data.TaggedError("ImportInterrupted")<{
  readonly botId: string
  readonly written: number
  readonly total: number
  readonly cause: unknown
}> {
  override get message() {
    const cause = this.cause instanceof Error ? this.cause.message : String(this.cause)
    return `import into bot ${this.botId} stopped after ${this.written} of ${this.total} records: ${cause}\nRun the same import again to finish it: records already in the log are skipped.`
  }
}

/** The projections could not be read for `import --verify` (Postgres down, migrations not applied...). */
export class ProjectionsUnreadable extends Data.TaggedError("ProjectionsUnreadable")<{ readonly botId: string; readonly cause: unknown }> {
  override get message() {
    const cause = this.cause instanceof Error ? this.cause.message : String(this.cause)
    return `cannot read the projections of bot ${this.botId}: ${cause}\nIs Postgres reachable (DATABASE_URL) and migrated (botfleet migrate)?`
  }
}
