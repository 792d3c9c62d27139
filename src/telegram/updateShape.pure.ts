/**
 * What the ingress accepts as a Telegram Update: an object with a non-negative integer
 * `update_id` and exactly one update field holding an object (`message`, `callback_query`...).
 * Returns the reason it is not one, or null. Deliberately shallow: the bot's handler reads the
 * rest, and an update type newer than this code must still get through.
 */
export const updateProblem = (body: unknown): string | null => {
  if (typeof body !== "object" || body === null || Array.isArray(body)) return "an update must be a JSON object"
  const u = body as Record<string, unknown>
  const id = u["update_id"]
  if (typeof id !== "number" || !Number.isSafeInteger(id) || id < 0) return "update_id must be a non-negative integer"
  const kinds = Object.keys(u).filter((k) => k !== "update_id")
  if (kinds.length === 0) return "the update carries no content (no field besides update_id)"
  if (kinds.length > 1) return `an update carries exactly one field besides update_id, got ${kinds.slice(0, 5).join(", ")}`
  const content = u[kinds[0]!]
  if (typeof content !== "object" || content === null || Array.isArray(content)) return `${kinds[0]} must be an object`
  if (kinds[0] === "message" || kinds[0] === "edited_message" || kinds[0] === "channel_post") {
    const m = content as { message_id?: unknown; chat?: { id?: unknown } }
    if (typeof m.message_id !== "number") return `${kinds[0]}.message_id must be a number`
    if (typeof m.chat?.id !== "number") return `${kinds[0]}.chat.id must be a number`
  }
  return null
}
