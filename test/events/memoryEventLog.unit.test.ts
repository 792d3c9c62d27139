import { makeMemoryEventLog } from "../../src/events/memoryEventLog.js"
import { eventLogContract } from "./eventLog.contract.js"

eventLogContract("memory", async () => {
  const log = makeMemoryEventLog({ partitions: 16 })
  return { log, injectRaw: async (p, fields) => log.injectRaw(p, fields), cleanup: async () => {} }
})
