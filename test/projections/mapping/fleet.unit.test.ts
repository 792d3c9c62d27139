import { Either } from "effect"
import { describe, expect, it } from "vitest"
import { decodeFields, toFields, withPosition } from "../../../src/events/codec.js"
import type { DomainEvent } from "../../../src/events/schema/catalogue.js"
import { encodePayload } from "../../../src/events/schema/registry.js"
import { FLEET_OWNER, FLEET_STREAM } from "../../../src/projections/mapping/fleet.js"
import { mapBatch } from "../../../src/projections/mapping/mapBatch.js"
import type { ProjectionInput } from "../../../src/projections/mapping/rows.js"

const input = (botId: string, version: number, data: DomainEvent): ProjectionInput => {
  const p = Either.getOrThrow(encodePayload(data))
  const raw = toFields(botId, version, {
    eventId: `e${version}`, type: p.type, schemaVersion: p.schemaVersion, occurredAt: "2026-01-01T00:00:00Z", correlationId: "c", causationId: "", actor: "ops:cli:ann", data: JSON.stringify(p.json)
  })
  return { event: withPosition(Either.getOrThrow(decodeFields(raw)), String(version), 0), raw }
}

describe("fleet events in the projections", () => {
  it("are archived and audited under the fleet's owner, with no bot row, and never refused for a missing BotRegistered", () => {
    const changed: DomainEvent = {
      _tag: "FleetSettingChanged",
      setting: "LOG_LEVEL",
      value: "debug",
      scope: "all",
      nodes: [{ nodeId: "a", old: "INFO", value: "DEBUG", source: "live" }]
    }
    const { rows, failures } = mapBatch([input(FLEET_STREAM, 1, changed)], new Map())
    expect(failures).toEqual([])
    expect(rows.archive.map((r) => [r.bot_id, r.owner_id, r.type])).toEqual([[FLEET_STREAM, FLEET_OWNER, "FleetSettingChanged"]])
    expect(rows.audit.map((r) => [r.owner_id, r.actor, r.event_type, JSON.parse(r.summary)])).toEqual([
      [FLEET_OWNER, "ops:cli:ann", "FleetSettingChanged", { setting: "LOG_LEVEL", value: "debug", scope: "all", nodes: [{ nodeId: "a", old: "INFO", value: "DEBUG" }] }]
    ])
    expect([rows.botUpdates, rows.botsRegistered, rows.owners]).toEqual([[], [], []])
  })
})
