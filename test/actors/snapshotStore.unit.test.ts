import { makeMemorySnapshotStore } from "../../src/actors/snapshotStore.js"
import { snapshotStoreContract } from "./snapshotStore.contract.js"

snapshotStoreContract("memory", async () => ({ store: makeMemorySnapshotStore(), cleanup: async () => undefined }))
