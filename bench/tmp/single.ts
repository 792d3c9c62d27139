import { Effect } from "effect"
import { BotActor } from "../../src/actors/actor.js"
import type { ActorDeps, CallExecutor } from "../../src/actors/actor.js"
import { makeRedisInbox } from "../../src/actors/redisInbox.js"
import { makeMemorySnapshotStore } from "../../src/actors/snapshotStore.js"
import { makeRedisEventLog } from "../../src/events/redisEventLog.js"
import { BotModuleRegistry } from "../../src/telegram/bots/registry.js"
import { executeIntent } from "../../src/telegram/recordedCalls.js"
import { Sender } from "../../src/telegram/sender.js"
const exec = Effect.runPromise
const url = "redis://127.0.0.1:6379"
const prefix = `tmp-single-${Date.now()}`
const sender = new Sender({ limits: false })
let id = 0
const executeCall: CallExecutor = (botId, _s, intent) => executeIntent(intent, { botKey: botId, sender, now: () => new Date().toISOString(), call: (_m, p) => Effect.promise(async () => { await new Promise((r) => setTimeout(r, 2)); return { message_id: ++id, date: 1, chat: { id: p["chat_id"], type: "private" }, text: p["text"] } }) })
const log = await exec(makeRedisEventLog({ url, prefix }))
const deps: ActorDeps = { log, inbox: makeRedisInbox({ url, prefix }), snapshots: makeMemorySnapshotStore(), handlerFor: new BotModuleRegistry().handlerFor, executeCall }
const lease = (await exec(log.acquireLease("one", "n", 600_000)))!
await exec(log.append({ botId: "one", expectedVersion: 0, fence: lease.fence, events: [{ data: { _tag: "BotRegistered", ownerId: "o", name: "one", kind: "builtin", mode: "sandbox", config: { fallback: "ok", commands: {}, keywords: [] } }, occurredAt: new Date().toISOString(), correlationId: "x", actor: "owner:o" }] }))
const actor = new BotActor(deps, { botId: "one", nodeId: "n", fence: lease.fence, snapshotEvery: 500, batchSize: Number(process.env.B ?? 64), idleWaitMs: 100 })
const done = actor.run()
const N = Number(process.env.N ?? 10000)
let u = 1
const upd = (chat: number) => ({ update_id: u++, message: { message_id: u, date: 1, chat: { id: chat, type: "private" }, from: { id: chat, is_bot: false, first_name: "A" }, text: "hello" } })
const t0 = performance.now()
const c0 = process.cpuUsage()
await exec(Effect.forEach(Array.from({ length: N }, (_, i) => upd(1 + (i % 1000))), (x) => deps.inbox.enqueue("one", x), { concurrency: 100, discard: true }))
const t1 = performance.now()
while (actor.status().updatesHandled < N) await new Promise((r) => setTimeout(r, 5))
const t2 = performance.now()
const c = process.cpuUsage(c0)
console.log(JSON.stringify({ N, enqueueMs: Math.round(t1 - t0), totalMs: Math.round(t2 - t0), perSec: Math.round(N / ((t2 - t0) / 1000)), cpuMs: Math.round((c.user + c.system) / 1000) }))
await actor.send({ _tag: "Stop", reason: "x" }); await done
process.exit(0)
