import { canonicalJson, isPlainObject, jsonPath } from "../import/json.pure.js"

/**
 * A readable diff of two JSON values: one line per differing path, `path: expected → actual`
 * (values shortened), at most `limit` lines.
 */
export const jsonDiff = (expected: unknown, actual: unknown, limit = 20): ReadonlyArray<string> => {
  const lines: Array<string> = []
  const show = (v: unknown) => {
    if (v === undefined) return "(absent)"
    const s = canonicalJson(v)
    return s.length > 80 ? s.slice(0, 79) + "…" : s
  }
  const walk = (a: unknown, b: unknown, path: Array<string | number>): void => {
    if (lines.length >= limit) return
    if (isPlainObject(a) && isPlainObject(b)) {
      for (const k of [...new Set([...Object.keys(a), ...Object.keys(b)])].sort()) {
        path.push(k)
        walk(a[k], b[k], path)
        path.pop()
      }
      return
    }
    if (Array.isArray(a) && Array.isArray(b)) {
      for (let i = 0; i < Math.max(a.length, b.length); i++) {
        path.push(i)
        walk(a[i], b[i], path)
        path.pop()
      }
      return
    }
    if (a === undefined && b === undefined) return
    if (a === undefined || b === undefined || canonicalJson(a) !== canonicalJson(b)) lines.push(`${jsonPath(path)}: ${show(a)} → ${show(b)}`)
  }
  walk(expected, actual, [])
  return lines
}

export const sameJson = (a: unknown, b: unknown): boolean => canonicalJson(a) === canonicalJson(b)
