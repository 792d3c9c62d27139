/** A JSON value as configuration and sessions hold it. */
export type Json = null | boolean | number | string | ReadonlyArray<Json> | { readonly [k: string]: Json }
export type JsonObject = { readonly [k: string]: Json }

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v)

/**
 * Applies a JSON merge patch (RFC 7386): objects merge key by key, `null` deletes a key, anything
 * else replaces. Never mutates its arguments, so states sharing structure stay intact.
 */
export const mergePatch = (target: unknown, patch: unknown): Json => {
  if (!isObject(patch)) return (patch ?? null) as Json
  const out: Record<string, Json> = isObject(target) ? { ...(target as Record<string, Json>) } : {}
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k]
    else out[k] = mergePatch(out[k], v)
  }
  return out
}

/** `mergePatch` for an object target; a non-object patch result becomes `{}` (configs are objects). */
export const mergeObject = (target: JsonObject, patch: unknown): JsonObject => {
  const r = mergePatch(target, patch)
  return isObject(r) ? (r as JsonObject) : {}
}
