import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { SnapshotStoreService } from "../../src/actors/snapshotStore.js"
import { run } from "./support.js"

/**
 * What every snapshot store guarantees (snapshotStore.ts), asserted the same way against each
 * adapter: the bot-level part and the changed entries written together, entries read by key,
 * writes ordered by lease fence then version (a node that lost the lease never overwrites its
 * successor), deletes, and a reset that forgets a bot's whole snapshot.
 */
export const snapshotStoreContract = (name: string, make: () => Promise<{ store: SnapshotStoreService; cleanup: () => Promise<void> }>) =>
  describe(`snapshot store contract: ${name}`, () => {
    let store: SnapshotStoreService
    let cleanup: () => Promise<void>
    beforeAll(async () => {
      ;({ store, cleanup } = await make())
    })
    afterAll(async () => cleanup())

    const keys = (rows: ReadonlyArray<{ key: string; version: number; data: unknown }>) =>
      Object.fromEntries(rows.map((r) => [r.key, { version: r.version, data: r.data }]))

    it("writes the bot-level part and the changed entries together, and reads entries back by key only", async () => {
      expect(await run(store.load("a"))).toBeNull()
      expect(await run(store.loadEntries("a", ["u:1"]))).toEqual([])
      await run(store.save("a", { version: 10, schemaVersion: 3, fence: 1, state: { n: 10 } }, [["u:1", { firstName: "Ann" }], ["s:1:1", { step: 2 }]]))
      expect(await run(store.load("a"))).toEqual({ version: 10, schemaVersion: 3, fence: 1, state: { n: 10 } })
      expect(keys(await run(store.loadEntries("a", ["u:1", "s:1:1", "u:2"])))).toEqual({
        "u:1": { version: 10, data: { firstName: "Ann" } },
        "s:1:1": { version: 10, data: { step: 2 } }
      })
      // a later snapshot writes only what changed; the rest stays as written
      await run(store.save("a", { version: 20, schemaVersion: 3, fence: 1, state: { n: 20 } }, [["u:2", { firstName: "Bo" }], ["s:1:1", null]]))
      expect(keys(await run(store.loadEntries("a", ["u:1", "u:2", "s:1:1"])))).toEqual({
        "u:1": { version: 10, data: { firstName: "Ann" } },
        "u:2": { version: 20, data: { firstName: "Bo" } }
      })
      // another bot's entries are its own
      expect(await run(store.loadEntries("b", ["u:1"]))).toEqual([])
    })

    it("never lets an older write replace a newer one: lower fence, or same fence and lower version", async () => {
      await run(store.save("c", { version: 50, schemaVersion: 3, fence: 2, state: { by: "new" } }, [["u:1", { by: "new" }]]))
      // a node that lost the lease (fence 1) finishing a snapshot late, at a higher version even
      await run(store.save("c", { version: 60, schemaVersion: 3, fence: 1, state: { by: "old" } }, [["u:1", { by: "old" }], ["u:9", { by: "old" }], ["u:1", null]]))
      expect(await run(store.load("c"))).toMatchObject({ version: 50, fence: 2, state: { by: "new" } })
      expect(keys(await run(store.loadEntries("c", ["u:1"])))).toEqual({ "u:1": { version: 50, data: { by: "new" } } })
      // the same lease going back in version: refused too
      await run(store.save("c", { version: 40, schemaVersion: 3, fence: 2, state: { by: "older" } }, [["u:1", { by: "older" }]]))
      expect(await run(store.load("c"))).toMatchObject({ version: 50, state: { by: "new" } })
      // a newer lease rebuilding from version 1 replaces everything it writes, whatever the version
      await run(store.save("c", { version: 5, schemaVersion: 3, fence: 3, state: { by: "rebuilt" } }, [["u:1", { by: "rebuilt" }]]))
      expect(await run(store.load("c"))).toMatchObject({ version: 5, fence: 3, state: { by: "rebuilt" } })
      expect(keys(await run(store.loadEntries("c", ["u:1"])))).toEqual({ "u:1": { version: 5, data: { by: "rebuilt" } } })
    })

    it("forgets a bot on reset, but not what a newer lease wrote", async () => {
      await run(store.save("d", { version: 7, schemaVersion: 3, fence: 1, state: {} }, [["u:1", 1], ["u:2", 2]]))
      await run(store.reset("d", 1))
      expect(await run(store.load("d"))).toBeNull()
      expect(await run(store.loadEntries("d", ["u:1", "u:2"]))).toEqual([])
      await run(store.save("d", { version: 3, schemaVersion: 3, fence: 5, state: {} }, [["u:1", 1]]))
      await run(store.reset("d", 4))
      expect(await run(store.load("d"))).toMatchObject({ fence: 5 })
      expect(await run(store.loadEntries("d", ["u:1"]))).toHaveLength(1)
    })

    it("writes many entries in one snapshot, and reads a few of them back", async () => {
      const many = Array.from({ length: 2_000 }, (_, i) => [`u:${i}`, { firstName: `user ${i}`, i }] as const)
      await run(store.save("e", { version: 2_000, schemaVersion: 3, fence: 1, state: {} }, many))
      const back = await run(store.loadEntries("e", ["u:0", "u:1999", "u:2000"]))
      expect(keys(back)).toEqual({ "u:0": { version: 2_000, data: { firstName: "user 0", i: 0 } }, "u:1999": { version: 2_000, data: { firstName: "user 1999", i: 1999 } } })
    })
  })
