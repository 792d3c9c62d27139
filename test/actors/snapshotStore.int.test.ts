import { makePostgresSnapshotStore } from "../../src/actors/postgresSnapshotStore.js"
import { migrate } from "../../src/db/migrator.js"
import { makePgliteSql } from "../../src/db/pgliteSql.js"
import { makePgSql } from "../../src/db/pgSql.js"
import { createTestDatabase } from "../support/db.js"
import { snapshotStoreContract } from "./snapshotStore.contract.js"

snapshotStoreContract("Postgres", async () => {
  const db = await createTestDatabase("snapshot_store")
  const sql = makePgSql(db.url, { max: 2 })
  await migrate(sql)
  return {
    store: makePostgresSnapshotStore(sql),
    cleanup: async () => {
      await sql.close()
      await db.drop()
    }
  }
})

snapshotStoreContract("PGlite", async () => {
  const sql = await makePgliteSql({})
  await migrate(sql)
  return { store: makePostgresSnapshotStore(sql), cleanup: () => sql.close() }
})
