import { Schema } from "effect"

/*
 * Main thread → worker: what crosses the piscina task boundary and each bot's MessagePort.
 * Paired with output.ts (worker → main). Both sides decode what they receive.
 */

export const ActorCommand = Schema.Union(
  Schema.TaggedStruct("ChangeConfig", { patch: Schema.Unknown }),
  Schema.TaggedStruct("Stop", { reason: Schema.String }),
  Schema.TaggedStruct("Remove", { reason: Schema.String }),
  Schema.TaggedStruct("RotateToken", { tokenCiphertext: Schema.String }),
  Schema.TaggedStruct("Status", {})
)

/** Per-actor settings (see ActorConfig); plain data, so they clone to the worker. */
export const ActorSpec = Schema.Struct({
  botId: Schema.String,
  nodeId: Schema.String,
  fence: Schema.Number,
  snapshotEvery: Schema.optional(Schema.Number),
  batchSize: Schema.optional(Schema.Number),
  idleWaitMs: Schema.optional(Schema.Number),
  inputBudgetMs: Schema.optional(Schema.Number),
  maxResidentEntries: Schema.optional(Schema.Number)
})
export type ActorSpec = typeof ActorSpec.Type

/** A command over the bot's port; the worker answers with the same `requestId`. */
export const ToWorker = Schema.TaggedStruct("Command", { requestId: Schema.Number, command: ActorCommand })
export type ToWorker = typeof ToWorker.Type

/** How a worker thread builds its ports: `module` exports `createActorDeps(options)`. */
export interface WorkerSetup {
  readonly module: string
  readonly options: unknown
}
