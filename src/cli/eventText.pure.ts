import type { RecordedEvent } from "../events/schema/envelope.js"

/*
 * One readable line per event for `botfleet tail`: version, time, type and a short summary of the
 * payload. Large payloads (updates, records, patches) are summarised, secrets never shown.
 */

const secretKey = /token|secret|password|authorization|ciphertext/i
const bulky = new Set(["update", "record", "params", "result", "patch", "config"])

/** A Telegram bot token anywhere in a text (same pattern as the logger's redaction). */
const botToken = /\d+:[A-Za-z0-9_-]{35}/g

const short = (v: unknown, max = 60): string => {
  const s = (JSON.stringify(v) ?? String(v)).replace(botToken, "[redacted]")
  return s.length > max ? s.slice(0, max - 1) + "…" : s
}

/** `key=value` pairs of the payload, bulky values shown by size, secret ones as [redacted]. */
export const summarize = (data: Readonly<Record<string, unknown>>): string =>
  Object.entries(data)
    .filter(([k]) => k !== "_tag")
    .map(([k, v]) => {
      if (secretKey.test(k)) return `${k}=[redacted]`
      if (bulky.has(k) && v !== null && typeof v === "object") return `${k}={${Object.keys(v).length} keys}`
      return `${k}=${short(v)}`
    })
    .join(" ")

/**
 * `v<version>  <time>  <type>  <summary>`. The time is when the log recorded the event (it grows
 * with the version, so a tail reads in order), or the event's own time where the store does not
 * know it (events archived before it kept recorded times).
 */
export const formatEventLine = (e: RecordedEvent): string =>
  `v${e.version}  ${e.recordedAt ?? e.occurredAt}  ${e.type.padEnd(24)}  ${summarize(e.data as unknown as Record<string, unknown>)}`

/** The chat an event concerns, where it names one (payload chatId, an update's chat, a call's chat_id). */
export const chatOf = (e: RecordedEvent): string | undefined => {
  const d = e.data as unknown as Record<string, unknown>
  if (typeof d["chatId"] === "number") return String(d["chatId"])
  const u = d["update"] as Record<string, Record<string, Record<string, unknown>>> | undefined
  for (const kind of ["message", "edited_message", "channel_post", "callback_query"]) {
    const m = u?.[kind] as Record<string, unknown> | undefined
    const chat = (m?.["chat"] ?? (m?.["message"] as Record<string, unknown> | undefined)?.["chat"]) as Record<string, unknown> | undefined
    if (chat && (typeof chat["id"] === "number" || typeof chat["id"] === "string")) return String(chat["id"])
  }
  const p = d["params"] as Record<string, unknown> | undefined
  if (p && (typeof p["chat_id"] === "number" || typeof p["chat_id"] === "string")) return String(p["chat_id"])
  return undefined
}

export interface EventFilter {
  readonly types?: ReadonlyArray<string>
  readonly chat?: string
}

export const matches = (f: EventFilter, e: RecordedEvent): boolean =>
  (!f.types || f.types.length === 0 || f.types.includes(e.type)) && (f.chat === undefined || chatOf(e) === f.chat)

/** The envelope as exported (ndjson): no adapter-specific position, partition or recorded time. */
export const exportLine = (e: RecordedEvent): string => {
  const { position: _position, partition: _partition, recordedAt: _recordedAt, ...envelope } = e
  return JSON.stringify(envelope)
}
