/*
 * JSON helpers for the legacy import: precise locations for broken files, JSON paths for bad
 * values, a canonical form to checksum records, and a check that parsing lost nothing.
 */

/** `$.sessions[3].data["first name"]`: the JSONPath of a value, as error messages show it. */
export const jsonPath = (segments: ReadonlyArray<string | number>): string =>
  "$" +
  segments
    .map((s) => (typeof s === "number" ? `[${s}]` : /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(s) ? `.${s}` : `[${JSON.stringify(s)}]`))
    .join("")

/** 1-based line and column of a character offset. */
export const lineColumn = (text: string, offset: number): { readonly line: number; readonly column: number } => {
  let line = 1
  let lineStart = 0
  for (let i = 0; i < offset && i < text.length; i++) {
    if (text.charCodeAt(i) === 10) {
      line++
      lineStart = i + 1
    }
  }
  return { line, column: offset - lineStart + 1 }
}

/**
 * Parses JSON text; on failure returns a reason with line and column (taken from the parser's
 * message, which names the offending position).
 */
export const parseJsonText = (
  text: string
): { readonly ok: true; readonly value: unknown } | { readonly ok: false; readonly reason: string } => {
  const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text // a BOM is not part of the JSON
  if (body.trim() === "") return { ok: false, reason: `the file is empty (${text.length} bytes): a legacy file holds one JSON object` }
  try {
    return { ok: true, value: JSON.parse(body) }
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e)
    const position = /position (\d+)/.exec(message)
    const where = position ? lineColumn(body, Number(position[1])) : /end of JSON input/i.test(message) ? lineColumn(body, body.length) : undefined
    const short = message.replace(/\s*in JSON at position \d+.*$/s, "").replace(/^JSON\.parse: /, "")
    return { ok: false, reason: `not valid JSON${where ? ` at line ${where.line}, column ${where.column}` : ""}: ${short}` }
  }
}

/**
 * The first value JSON.parse could not keep exactly: an integer beyond ±2^53 (its digits were
 * rounded) or a number too large to represent (read as Infinity). Such a file must be fixed (the
 * value quoted as a string) before import, or the import would not be lossless.
 */
export const findLossyNumber = (
  value: unknown,
  path: Array<string | number> = []
): { readonly path: ReadonlyArray<string | number>; readonly value: number } | undefined => {
  if (typeof value === "number") {
    return !Number.isFinite(value) || (Number.isInteger(value) && !Number.isSafeInteger(value)) ? { path: [...path], value } : undefined
  }
  if (value === null || typeof value !== "object") return undefined
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      path.push(i)
      const found = findLossyNumber(value[i], path)
      path.pop()
      if (found) return found
    }
    return undefined
  }
  for (const k of Object.keys(value)) {
    path.push(k)
    const found = findLossyNumber((value as Record<string, unknown>)[k], path)
    path.pop()
    if (found) return found
  }
  return undefined
}

/**
 * A canonical JSON text: object keys sorted, no whitespace. Two values have the same canonical
 * text exactly when they are the same JSON value, so its hash is a record's checksum.
 */
export const canonicalJson = (value: unknown): string => {
  if (value === null || typeof value !== "object") return JSON.stringify(value) ?? "null"
  if (Array.isArray(value)) {
    let out = "["
    for (let i = 0; i < value.length; i++) out += (i > 0 ? "," : "") + canonicalJson(value[i])
    return out + "]"
  }
  const o = value as Record<string, unknown>
  const keys = Object.keys(o).sort()
  let out = "{"
  let first = true
  for (const k of keys) {
    const v = o[k]
    if (v === undefined) continue
    out += (first ? "" : ",") + JSON.stringify(k) + ":" + canonicalJson(v)
    first = false
  }
  return out + "}"
}

/**
 * True when two values are the same JSON value, exactly when their canonical texts are equal
 * (object keys in any order, undefined properties absent), without building those texts.
 */
export const sameJson = (a: unknown, b: unknown): boolean => {
  if (a === b) return true
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false
    for (let i = 0; i < a.length; i++) if (!sameJson(a[i], b[i])) return false
    return true
  }
  if (Array.isArray(b)) return false
  const x = a as Record<string, unknown>
  const y = b as Record<string, unknown>
  let defined = 0
  for (const k in x) {
    if (!Object.prototype.hasOwnProperty.call(x, k) || x[k] === undefined) continue
    if (!Object.prototype.hasOwnProperty.call(y, k) || !sameJson(x[k], y[k])) return false
    defined++
  }
  for (const k in y) if (Object.prototype.hasOwnProperty.call(y, k) && y[k] !== undefined) defined--
  return defined === 0
}

export const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v)
