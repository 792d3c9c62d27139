import { Effect } from "effect"
import { checkUpdate } from "./inbox.js"
import type { InboxDeadLetter, InboxEntry, InboxService } from "./inbox.js"

/**
 * In-memory inboxes for one process (unit tests, the in-process host over the memory log).
 * Ids are `<seq>-0`, comparable numerically like Redis stream ids.
 */
export const makeMemoryInbox = (now: () => number = Date.now): InboxService => {
  const boxes = new Map<string, InboxEntry[]>()
  const dead = new Map<string, InboxDeadLetter[]>()
  const waiters = new Map<string, Set<() => void>>()
  let seq = 0
  const seqOf = (id: string | null) => (id === null ? 0 : Number(id.split("-")[0]))
  const after = (botId: string, id: string | null) => (boxes.get(botId) ?? []).filter((e) => seqOf(e.id) > seqOf(id))

  const push = (botId: string, update: unknown): string => {
    const entry: InboxEntry = { id: `${++seq}-0`, update: structuredClone(update), receivedAt: new Date(now()).toISOString() }
    const box = boxes.get(botId) ?? []
    box.push(entry)
    boxes.set(botId, box)
    for (const wake of waiters.get(botId) ?? []) wake()
    return entry.id
  }

  return {
    enqueue: (botId, update) =>
      Effect.suspend(() => {
        const bad = checkUpdate(botId, update)
        return bad ? Effect.fail(bad) : Effect.succeed(push(botId, update))
      }),
    readAfter: (botId, id, count) => Effect.sync(() => after(botId, id).slice(0, count)),
    waitFor: (botId, id, maxWaitMs) =>
      Effect.async<void>((resume) => {
        if (after(botId, id).length > 0) return resume(Effect.void)
        const set = waiters.get(botId) ?? new Set()
        waiters.set(botId, set)
        const done = () => {
          clearTimeout(timer)
          set.delete(done)
          resume(Effect.void)
        }
        const timer = setTimeout(done, maxWaitMs)
        set.add(done)
        return Effect.sync(() => {
          clearTimeout(timer)
          set.delete(done)
        })
      }),
    headId: (botId) => Effect.sync(() => boxes.get(botId)?.at(-1)?.id ?? null),
    lag: (botId, id, cap = 10_000) => Effect.sync(() => Math.min(cap, after(botId, id).length)),
    trim: (botId, upTo) =>
      Effect.sync(() => {
        const box = boxes.get(botId)
        if (box) boxes.set(botId, box.filter((e) => seqOf(e.id) > seqOf(upTo)))
      }),
    deadLetter: (botId, entry, reason) =>
      Effect.sync(() => {
        const list = dead.get(botId) ?? []
        list.push({ entryId: entry.id, update: entry.update, reason, at: new Date(now()).toISOString() })
        dead.set(botId, list)
      }),
    readDeadLetters: (botId) => Effect.sync(() => [...(dead.get(botId) ?? [])]),
    retryDeadLetter: (botId, entryId) =>
      Effect.sync(() => {
        const list = dead.get(botId) ?? []
        const found = list.find((d) => d.entryId === entryId)
        if (!found) return null
        // every copy goes: a crash between dead-lettering and recording can leave two of one entry
        dead.set(botId, list.filter((d) => d.entryId !== entryId))
        return push(botId, found.update)
      }),
    dropDeadLetter: (botId, entryId) =>
      Effect.sync(() => {
        const list = dead.get(botId) ?? []
        const kept = list.filter((d) => d.entryId !== entryId)
        dead.set(botId, kept)
        return list.length - kept.length
      }),
    close: Effect.void
  }
}
