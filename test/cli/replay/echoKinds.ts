import { echoHandler } from "../../../src/actors/decider/updateHandler.js"
import type { UpdateHandler } from "../../../src/actors/decider/updateHandler.js"
import type { DomainEvent } from "../../../src/events/schema/catalogue.js"

/** A kinds module for `botfleet replay --kinds`: every bot echoes. */
export const handlerFor = (): UpdateHandler => echoHandler

/** The same bot after a "behaviour change": it shouts its replies. */
export const shouting: UpdateHandler = {
  handle: (ctx) => (echoHandler.handle(ctx) as ReadonlyArray<DomainEvent>).map((e) => (e._tag === "ReplySent" ? { ...e, text: e.text.toUpperCase() } : e))
}
