/*
 * Cursors for paged lists: the sort key of the last row returned, opaque to clients (base64url
 * JSON), so a page boundary is stable while rows are added (keyset paging, never OFFSET).
 */

const B64 = /^[A-Za-z0-9_-]{1,400}$/

export const encodeCursor = (key: ReadonlyArray<string | number>): string => {
  const json = JSON.stringify(key)
  let bin = ""
  for (const b of new TextEncoder().encode(json)) bin += String.fromCharCode(b)
  return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "")
}

/** The key in a cursor; null when it is not one of ours (or of another shape than `arity` values). */
export const decodeCursor = (cursor: string, arity: number): ReadonlyArray<string | number> | null => {
  if (!B64.test(cursor)) return null
  try {
    const bin = atob(cursor.replace(/-/g, "+").replace(/_/g, "/"))
    const value: unknown = JSON.parse(new TextDecoder().decode(Uint8Array.from(bin, (c) => c.charCodeAt(0))))
    if (!Array.isArray(value) || value.length !== arity || !value.every((v) => typeof v === "string" || typeof v === "number")) return null
    return value as ReadonlyArray<string | number>
  } catch {
    return null
  }
}

/** One page: `limit` rows and the cursor of the next page (null at the end). Fetch `limit + 1` rows to know. */
export const pageOf = <R>(rows: ReadonlyArray<R>, limit: number, keyOf: (r: R) => ReadonlyArray<string | number>) => {
  const items = rows.slice(0, limit)
  const last = items[items.length - 1]
  return { items, nextCursor: rows.length > limit && last !== undefined ? encodeCursor(keyOf(last)) : null }
}
