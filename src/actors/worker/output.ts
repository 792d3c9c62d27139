import { Schema } from "effect"
import { ThreadStats } from "../../metrics/threadStats.js"

/* Worker → main thread, over each bot's MessagePort and as the piscina task's result. */

/** An error as it crosses threads: the class itself does not survive structured cloning. */
export const ErrorInfo = Schema.Struct({ name: Schema.String, message: Schema.String, stack: Schema.optional(Schema.String) })
export type ErrorInfo = typeof ErrorInfo.Type

export const StatusData = Schema.Struct({
  botId: Schema.String,
  status: Schema.Literal("unregistered", "registered", "running", "stopped", "failed", "removed"),
  version: Schema.Number,
  inboxCursor: Schema.NullOr(Schema.String),
  updatesHandled: Schema.Number,
  updatesFailed: Schema.Number,
  duplicatesDropped: Schema.Number,
  config: Schema.Unknown,
  residentEntries: Schema.optional(Schema.Number),
  snapshotError: Schema.optional(Schema.NullOr(Schema.String))
})

export const FromWorker = Schema.Union(
  /** `threadId` lets the host end this thread if the actor gets stuck. */
  Schema.TaggedStruct("Started", { status: StatusData, threadId: Schema.Number }),
  Schema.TaggedStruct("Reply", { requestId: Schema.Number, status: StatusData }),
  Schema.TaggedStruct("Refused", { requestId: Schema.Number, error: ErrorInfo }),
  /** `stats`: what the thread measured since its last heartbeat (metrics), on one actor's heartbeat per tick. */
  Schema.TaggedStruct("Heartbeat", { beatAt: Schema.Number, busySince: Schema.NullOr(Schema.Number), stats: Schema.optional(ThreadStats) })
)
export type FromWorker = typeof FromWorker.Type

/** The task's result: the actor stopped (drained) or died with an error; a crashed thread rejects instead. */
export const TaskResult = Schema.Union(
  Schema.TaggedStruct("Stopped", { status: StatusData }),
  Schema.TaggedStruct("Died", { error: ErrorInfo })
)
export type TaskResult = typeof TaskResult.Type

export const toErrorInfo = (e: unknown): ErrorInfo => {
  if (e instanceof Error) return { name: (e as { _tag?: string })._tag ?? e.name, message: e.message, stack: e.stack }
  return { name: "Error", message: String(e) }
}

/** An error rebuilt on the receiving side: same name, message and (remote) stack. */
export const fromErrorInfo = (info: ErrorInfo): Error => {
  const e = new Error(info.message)
  e.name = info.name
  if (info.stack !== undefined) e.stack = info.stack
  return e
}
