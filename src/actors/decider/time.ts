import { epochMs } from "../../events/schema/time.js"

/**
 * Milliseconds since the epoch of a recorded ISO-8601 instant; NaN when it is not one. Pure code
 * may not touch `Date` (lint), yet the dedupe window needs "24 h before this recorded time".
 */
export const isoToMs = (iso: string): number => epochMs(iso) ?? Number.NaN
