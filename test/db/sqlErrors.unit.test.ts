import { describe, expect, it } from "vitest"
import { SqlUnavailable, pgAddress, unavailableReason } from "../../src/db/sqlErrors.js"
import { isTransientSqlError } from "../../src/projections/errors.js"

const pgError = (code: string, message = "x") => Object.assign(new Error(message), { code })

describe("telling an unavailable Postgres from a wrong statement", () => {
  it("classifies what a restart, a terminated backend or a dead network looks like", () => {
    expect(unavailableReason(pgError("57P01", "terminating connection due to administrator command"))).toBe("shutting-down")
    expect(unavailableReason(pgError("57P03", "the database system is starting up"))).toBe("shutting-down")
    expect(unavailableReason(pgError("08006"))).toBe("connection-lost")
    expect(unavailableReason(pgError("08001"))).toBe("unreachable")
    expect(unavailableReason(pgError("ECONNREFUSED", "connect ECONNREFUSED 127.0.0.1:5"))).toBe("unreachable")
    expect(unavailableReason(pgError("ECONNRESET", "read ECONNRESET"))).toBe("connection-lost")
    expect(unavailableReason(new Error("Connection terminated unexpectedly"))).toBe("connection-lost")
    expect(unavailableReason(new Error("Client has encountered a connection error and is not queryable"))).toBe("connection-lost")
    expect(unavailableReason(new Error("timeout exceeded when trying to connect"))).toBe("unreachable")
    expect(unavailableReason(new Error("Cannot use a pool after calling end on the pool"))).toBe("closed")
  })

  it("leaves statement errors alone: constraint, syntax, serialisation, cancellation", () => {
    for (const code of ["23505", "42601", "40001", "57014", "22P02"]) expect(unavailableReason(pgError(code))).toBeNull()
    expect(unavailableReason(new TypeError("undefined is not a function"))).toBeNull()
    expect(unavailableReason("text")).toBeNull()
  })

  it("is retryable, except on a client its owner closed; projections treat it the same way", () => {
    const lost = new SqlUnavailable({ reason: "connection-lost", address: "db:5432/x", code: "57P01", cause: pgError("57P01", "terminating") })
    const closed = new SqlUnavailable({ reason: "closed", address: "db:5432/x", code: undefined, cause: new Error("ended") })
    expect(lost.retryable).toBe(true)
    expect(closed.retryable).toBe(false)
    expect(isTransientSqlError(lost)).toBe(true)
    expect(isTransientSqlError(closed)).toBe(false)
    expect(lost.message).toBe("postgres at db:5432/x unavailable (connection-lost): terminating")
  })

  it("names a server by host, port and database, never by its credentials", () => {
    expect(pgAddress("postgres://app:s3cret@db.internal:6432/fleet?sslmode=require")).toBe("db.internal:6432/fleet")
    expect(pgAddress("postgresql://db/fleet")).toBe("db:5432/fleet")
    expect(pgAddress("not a url")).not.toContain("not a url")
  })
})
