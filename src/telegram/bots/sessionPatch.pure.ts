/**
 * The JSON merge patch (RFC 7386) that turns `before` into `after`: what a `SessionChanged` event
 * carries, so an event holds what changed, never the whole session. `undefined` when nothing did.
 * Arrays and scalars are replaced whole (merge patches cannot address array items).
 */
export const diffMergePatch = (before: unknown, after: unknown): unknown => {
  if (!isObject(after) || !isObject(before)) {
    if (jsonEqual(before, after)) return undefined
    // merge patch cannot say "set to null" inside an object; at the top level null deletes the session
    return after === undefined ? null : isObject(after) ? stripUndefined(after) : after
  }
  const patch: Record<string, unknown> = {}
  // defineProperty, not assignment: a key named "__proto__" from user data stays a plain key
  const set = (k: string, v: unknown) => Object.defineProperty(patch, k, { value: v, enumerable: true, writable: true, configurable: true })
  const has = (o: object, k: string) => Object.prototype.hasOwnProperty.call(o, k)
  for (const k of Object.keys(before)) if (!has(after, k) || after[k] === undefined) set(k, null)
  for (const [k, v] of Object.entries(after)) {
    if (v === undefined) continue
    if (!has(before, k)) {
      set(k, isObject(v) ? stripUndefined(v) : v)
      continue
    }
    const sub = diffMergePatch(before[k], v)
    if (sub !== undefined) set(k, sub)
  }
  return Object.keys(patch).length > 0 ? patch : undefined
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v)

const stripUndefined = (v: Record<string, unknown>): Record<string, unknown> =>
  JSON.parse(JSON.stringify(v)) as Record<string, unknown>

const jsonEqual = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b)

/** A deep copy through JSON: what a handler may mutate freely without touching the actor's state. */
export const jsonClone = <A>(v: A): A => (v === undefined ? v : (JSON.parse(JSON.stringify(v)) as A))
