import { Effect } from "effect"
import { migrate } from "../../src/db/migrator.js"
import { makePgliteSql } from "../../src/db/pgliteSql.js"
import { makePgSql } from "../../src/db/pgSql.js"
import { makePostgresEventLog } from "../../src/events/postgresEventLog.js"
import { createTestDatabase } from "../support/db.js"
import { eventLogContract } from "./eventLog.contract.js"

eventLogContract("Postgres (server)", async () => {
  const db = await createTestDatabase("pglog_contract")
  const sql = makePgSql(db.url)
  await migrate(sql)
  const log = makePostgresEventLog({ sql })
  return {
    log,
    injectRaw: log.injectRaw,
    cleanup: async () => {
      await Effect.runPromise(log.close)
      await sql.close()
      await db.drop()
    }
  }
})

eventLogContract("Postgres (PGlite in memory)", async () => {
  const sql = await makePgliteSql()
  await migrate(sql)
  const log = makePostgresEventLog({ sql })
  return {
    log,
    injectRaw: log.injectRaw,
    cleanup: async () => {
      await Effect.runPromise(log.close)
      await sql.close()
    }
  }
})
