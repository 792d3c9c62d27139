import type { DomainEvent } from "../../events/schema/catalogue.js"

/*
 * Fleet-level events (live setting changes, erasures of users) live on one reserved stream, FLEET_STREAM, never on a
 * bot's: ids starting with "_" are not given to bots. The projections archive and audit them like
 * any event, under the reserved owner FLEET_OWNER (no owner's API rows include them; an auditor
 * sees them with FLEET_OWNER among app.owner_ids), and give them no bots row.
 */

/** The fleet's own stream (events about the fleet, not about one bot). */
export const FLEET_STREAM = "_fleet"

/** The owner id fleet events are archived and audited under. */
export const FLEET_OWNER = "_fleet"

/** Whether an event is about the fleet rather than one bot. */
export const isFleetEvent = (e: DomainEvent): boolean => e._tag === "FleetSettingChanged" || e._tag === "UserForgotten"

/** Ids starting with "_" are reserved for the fleet's streams and leases. */
export const isReservedId = (id: string): boolean => id.startsWith("_")
