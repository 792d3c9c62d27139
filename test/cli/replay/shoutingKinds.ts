import { shouting } from "./echoKinds.js"

/** A kinds module for `botfleet replay --kinds`: the changed behaviour. */
export const handlerFor = () => shouting
