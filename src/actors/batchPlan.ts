import { lanesOfUpdate } from "./decider/entries.js"
import { updateIdOf } from "./decider/updateHandler.js"
import { compareInboxIds } from "./inbox.js"
import type { InboxEntry } from "./inbox.js"

/**
 * Which inbox entries an actor decides together, as one batch: the entries after the cursor, in
 * inbox order, up to the first one that shares a lane with an earlier one of the batch. A lane is
 * what orders updates in Telegram's model: a user, a chat, a session, an update_id. Updates of
 * different lanes are independent, so their handlers may wait on Bot API calls at the same time
 * (their calls go out together, their outcomes are recorded together); two updates of one chat
 * are never in one batch, so the second always sees everything the first did (its session, its
 * user) and its replies come after the first's. Pure.
 */
export const planBatch = (entries: ReadonlyArray<InboxEntry>, cursor: string | null, max: number): ReadonlyArray<InboxEntry> => {
  const batch: InboxEntry[] = []
  const lanes = new Set<string>()
  for (const entry of entries) {
    if (batch.length >= max) break
    if (cursor !== null && compareInboxIds(entry.id, cursor) <= 0) continue
    const updateId = updateIdOf(entry.update)
    const own = [...lanesOfUpdate(entry.update), ...(updateId !== null ? [`update:${updateId}`] : [])]
    if (batch.length > 0 && own.some((l) => lanes.has(l))) break
    for (const l of own) lanes.add(l)
    batch.push(entry)
  }
  return batch
}
