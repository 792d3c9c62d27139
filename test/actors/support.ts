import { Effect, Exit, Scope } from "effect"
import { expect } from "vitest"
import { decodeCore, encodeState } from "../../src/actors/decider/snapshot.js"
import type { SnapshotStoreService } from "../../src/actors/snapshotStore.js"
import type { EventLogService } from "../../src/events/eventLog.js"
import { makePoolHost } from "../../src/actors/poolHost.js"
import type { PoolHostOptions } from "../../src/actors/poolHost.js"

export const run = Effect.runPromise

export const text = (updateId: number, body: string, chatId = 1) => ({
  update_id: updateId,
  message: { message_id: updateId, chat: { id: chatId, type: "private" }, from: { id: 2 }, text: body }
})

/** Polls until `cond` holds (fails the test with the last value after `ms`). */
export const until = async (cond: () => Promise<boolean> | boolean, ms = 30_000, everyMs = 25) => {
  const end = Date.now() + ms
  while (Date.now() < end && !(await cond())) await new Promise((r) => setTimeout(r, everyMs))
  expect(await cond()).toBe(true)
}

/** update_ids of the bot's UpdateReceived events, in stream order. */
export const receivedIds = async (log: EventLogService, botId: string) =>
  (await run(log.readStream(botId)))
    .flatMap((e) => (e.data._tag === "UpdateReceived" ? [e.data.updateId] : []))

export const types = async (log: EventLogService, botId: string) => (await run(log.readStream(botId))).map((e) => e.type)

/** A pool whose threads build Redis ports under `prefix` and load the test bot kinds. */
export const testPool = (url: string, prefix: string, partitions: number, o: Partial<PoolHostOptions> = {}) =>
  makePoolHost({
    threads: 2,
    botsPerThread: 50,
    ...o,
    setup: {
      module: new URL("../../src/actors/redisActorDeps.ts", import.meta.url).href,
      options: { url, prefix, partitions, kindsModule: new URL("./fixtures/kinds.ts", import.meta.url).href }
    }
  })

/** A scope the test closes itself (afterAll), for scoped services like the supervisor. */
export const openScope = () => {
  const scope = Effect.runSync(Scope.make())
  return { scope, close: () => run(Scope.close(scope, Exit.void)) }
}

/**
 * What the snapshot store holds for a bot, as one printable state (encodeState): its bot-level
 * snapshot with the stored entries among `keys`. Null without a usable snapshot.
 */
export const storedState = async (snapshots: SnapshotStoreService, botId: string, keys: ReadonlyArray<string>) => {
  const snap = await run(snapshots.load(botId))
  if (!snap) return null
  const core = decodeCore(snap.schemaVersion, snap.state)
  if (!core) return null
  const stored = await run(snapshots.loadEntries(botId, keys))
  return encodeState({ ...core, entries: core.entries.withLoaded(stored.map((e) => [e.key, e.data] as const)) })
}
