import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import { BotActor } from "../../src/actors/actor.js"
import type { ActorDeps, CallExecutor } from "../../src/actors/actor.js"
import { encodeState } from "../../src/actors/decider/snapshot.js"
import { fold } from "../../src/actors/decider/state.js"
import { makeMemoryInbox } from "../../src/actors/memoryInbox.js"
import { makeMemorySnapshotStore } from "../../src/actors/snapshotStore.js"
import { replayEvents } from "../../src/cli/replay/replay.js"
import type { NewEvent } from "../../src/events/schema/envelope.js"
import { makeMemoryEventLog } from "../../src/events/memoryEventLog.js"
import { BotModuleRegistry } from "../../src/telegram/bots/registry.js"
import { executeIntent } from "../../src/telegram/recordedCalls.js"
import { Sender } from "../../src/telegram/sender.js"
import { run, storedState, until } from "./support.js"

/*
 * A large import is folded by the actor as any long tail is: a page at a time, each record's
 * entries loaded and written back at snapshots, memory held near MAX_RESIDENT_ENTRIES however
 * many users the import brings (per-user entries, never one giant state).
 */

const USERS = 3_000

const importedUsers = (): NewEvent[] =>
  Array.from({ length: USERS }, (_, i) => ({
    occurredAt: "2026-12-01T00:00:00.000Z",
    correlationId: "import-x",
    actor: "import:x",
    data: {
      _tag: "LegacyRecordImported" as const,
      importId: `i${i}`,
      collection: i % 2 === 0 ? "users" : "sessions",
      key: i % 2 === 0 ? String(10_000 + i) : `${10_000 + i}:${10_000 + i}`,
      record: i % 2 === 0 ? { id: 10_000 + i, first_name: `Legacy${i}`, language_code: "de" } : { visits: i },
      source: `f.json#$[${i}]`,
      checksum: `c${i}`,
      at: "2026-12-01T00:00:00.000Z"
    }
  }))

describe("an imported bot with many users", () => {
  it("folds the import in bounded memory, greets imported users back, and ends where a replay ends", async () => {
    const sent = new Map<number, string[]>()
    const sender = new Sender({ limits: false })
    let messageId = 1
    const executeCall: CallExecutor = (botId, _state, intent) =>
      executeIntent(intent, {
        botKey: botId,
        sender,
        now: () => new Date().toISOString(),
        call: (_method, params) =>
          Effect.sync(() => {
            const chatId = params["chat_id"] as number
            sent.set(chatId, [...(sent.get(chatId) ?? []), String(params["text"])])
            return { message_id: ++messageId, chat: { id: chatId, type: "private" }, date: 1, text: params["text"] }
          })
      })
    const registry = new BotModuleRegistry()
    const snapshots = makeMemorySnapshotStore()
    const deps: ActorDeps = { log: makeMemoryEventLog({ partitions: 2 }), inbox: makeMemoryInbox(), snapshots, handlerFor: registry.handlerFor, executeCall }
    const lease = (await run(deps.log.acquireLease("imported", "n1", 600_000)))!
    await run(
      deps.log.append({
        botId: "imported",
        expectedVersion: 0,
        fence: lease.fence,
        events: [
          { data: { _tag: "BotRegistered", ownerId: "o1", name: "imported", kind: "builtin", mode: "sandbox", config: {} }, occurredAt: "2026-12-01T00:00:00.000Z", correlationId: "t", actor: "owner:o1" },
          ...importedUsers()
        ]
      })
    )
    const actor = new BotActor(deps, { botId: "imported", nodeId: "n1", fence: lease.fence, snapshotEvery: 200, idleWaitMs: 20, maxResidentEntries: 100 })
    let maxResident = 0
    const watch = setInterval(() => (maxResident = Math.max(maxResident, actor.status().residentEntries ?? 0)), 1)
    const done = actor.run()
    // an imported user (profile in German) and a user known from an imported session
    for (const [id, name] of [[10_000, "Legacy0"], [10_001, "Sam"], [20_000, "New"]] as const) {
      const u = { update_id: id, message: { message_id: 1, date: 1, chat: { id, type: "private" }, from: { id, is_bot: false, first_name: name }, text: "/start", entities: [{ type: "bot_command", offset: 0, length: 6 }] } }
      await run(deps.inbox.enqueue("imported", u))
    }
    await until(() => actor.status().updatesHandled === 3)
    await actor.send({ _tag: "Stop", reason: "done" })
    await done
    clearInterval(watch)

    expect(sent.get(10_000)).toEqual(["Willkommen zurück, Legacy0!"])
    expect(sent.get(10_001)).toEqual(["Welcome back, Sam!"])
    expect(sent.get(20_000)).toEqual(["Hello, New!"])
    // 3,000 records, 4,500 entries: memory stayed near the cap (plus what waits for the next snapshot)
    expect(maxResident).toBeGreaterThan(0)
    expect(maxResident).toBeLessThan(100 + 2 * 200 + 64)
    const events = await run(deps.log.readStream("imported"))
    const folded = fold(events.map((e) => e.data))
    const keys = [...folded.entries.keys()]
    expect(keys.length).toBeGreaterThanOrEqual(USERS + USERS / 2)
    expect(await storedState(snapshots, "imported", keys)).toEqual(encodeState(folded))
    const report = await replayEvents("imported", events, registry.handlerFor)
    expect(report.divergences).toEqual([])
  }, 120_000)
})
