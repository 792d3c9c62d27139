import { parseGeneric, GENERIC_KEYS } from "./genericLayout.pure.js"
import { findLossyNumber, isPlainObject, jsonPath, parseJsonText } from "./json.pure.js"
import { MAX_PROBLEMS_PER_FILE } from "./records.pure.js"
import type { Hasher, ImportProblem, LegacyFormat, ParsedFile } from "./records.pure.js"
import { describe, parseSessionLocal } from "./sessionLocal.pure.js"

/**
 * Reads one legacy file's text: its layout is recognised (a `sessions` key means
 * telegraf-session-local; otherwise the generic layout), every record validated. Returns the
 * records, or every problem found (up to MAX_PROBLEMS_PER_FILE), each with file, JSON path, reason.
 */
export const parseLegacyFile = (
  file: string,
  text: string,
  hash: Hasher
): { readonly ok: true; readonly parsed: ParsedFile } | { readonly ok: false; readonly problems: ReadonlyArray<ImportProblem> } => {
  const parsed = parseJsonText(text)
  if (!parsed.ok) return { ok: false, problems: [{ file, path: "$", reason: parsed.reason }] }
  const json = parsed.value
  if (!isPlainObject(json)) {
    return { ok: false, problems: [{ file, path: "$", reason: `expected a JSON object (a telegraf-session-local store or the generic layout), got ${describe(json)}` }] }
  }
  const lossy = findLossyNumber(json)
  if (lossy) {
    return {
      ok: false,
      problems: [{
        file,
        path: jsonPath(lossy.path),
        reason: `the number ${String(lossy.value)} cannot be kept exactly (beyond ±2^53 or too large); quote it as a string in the file and import again`
      }]
    }
  }
  const problems: Array<ImportProblem> = []
  let format: LegacyFormat
  let result: { readonly records: ParsedFile["records"]; readonly notes: ParsedFile["notes"] }
  if ("sessions" in json) {
    format = "telegraf-session-local"
    result = parseSessionLocal(file, json, hash, problems)
  } else {
    format = "generic"
    const unknown = Object.keys(json).filter((k) => !(GENERIC_KEYS as ReadonlyArray<string>).includes(k))
    for (const k of unknown) {
      problems.push({
        file,
        path: jsonPath([k]),
        reason: `unknown top-level key: the generic layout has only ${GENERIC_KEYS.join(", ")}, and a telegraf-session-local store has a "sessions" array (see docs/import.md)`
      })
    }
    result = unknown.length > 0 ? { records: [], notes: {} } : parseGeneric(file, json, hash, problems)
  }
  if (problems.length > 0) return { ok: false, problems: problems.slice(0, MAX_PROBLEMS_PER_FILE) }
  return { ok: true, parsed: { file, format, records: result.records, notes: result.notes } }
}
