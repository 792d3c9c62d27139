import { createHash } from "node:crypto"

/**
 * File uploads (sendPhoto, sendDocument...) on the recorded-call path. A recorded intent must be
 * small JSON and must not carry a user's file into the log, so the bytes a handler uploads are
 * replaced in the call's params by a reference to their content, `{ upload: "sha256:<hex>",
 * filename, size }`, and kept in this thread's upload store until the call is sent (the actor
 * decides and sends on the same thread). The log holds the hash: a replay re-runs the handler,
 * which computes the same reference from the same bytes, and answers the call from the recorded
 * result; the bytes are never needed again.
 *
 * A crash between intent and send loses the held bytes, and that is fine: such an intent is
 * closed as outcome-unknown, never sent again. A reference whose bytes are gone is refused with
 * nothing sent.
 */

/** Telegram's limit for a file a bot uploads (multipart): 50 MB. */
export const MAX_UPLOAD_BYTES = 50 * 1024 * 1024
/** What one thread holds at most; the oldest uploads go first (their calls were long sent). */
const MAX_HELD_BYTES = 128 * 1024 * 1024

export interface UploadRef {
  readonly upload: string
  readonly filename: string
  readonly size: number
}

/** A file the handler passed that cannot be recorded (a path, a stream, too large). */
export class UploadRefused extends Error {
  override readonly name = "UploadRefused"
}

const held = new Map<string, Uint8Array>()
let heldBytes = 0

const hold = (hash: string, bytes: Uint8Array) => {
  if (held.has(hash)) {
    // most recently used last: the oldest entry is the first to go
    held.delete(hash)
    held.set(hash, bytes)
    return
  }
  held.set(hash, bytes)
  heldBytes += bytes.byteLength
  while (heldBytes > MAX_HELD_BYTES && held.size > 1) {
    const [oldest, b] = held.entries().next().value!
    held.delete(oldest)
    heldBytes -= b.byteLength
  }
}

/** The bytes behind a reference, if this thread still holds them. */
export const heldUpload = (hash: string): Uint8Array | undefined => held.get(hash)

export const isUploadRef = (v: unknown): v is UploadRef =>
  typeof v === "object" && v !== null && typeof (v as { upload?: unknown }).upload === "string" && (v as { upload: string }).upload.startsWith("sha256:")

const isBytes = (v: unknown): v is Uint8Array => v instanceof Uint8Array

/**
 * The params with every file the handler passed (telegraf's InputFile: `{ source: Buffer,
 * filename? }` or `{ url }`) made recordable: bytes become an upload reference (and are held for
 * the send), a URL becomes the URL string Telegram downloads. A file id or URL given as a string
 * is left as it is. Throws UploadRefused for what cannot be recorded deterministically.
 */
export const recordableParams = (params: Readonly<Record<string, unknown>>): Record<string, unknown> => {
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(params)) {
    if (typeof v !== "object" || v === null || Array.isArray(v) || isBytes(v)) {
      if (isBytes(v)) throw new UploadRefused(`${k}: pass a file as { source: Buffer, filename }, not bare bytes`)
      out[k] = v
      continue
    }
    const f = v as { source?: unknown; url?: unknown; filename?: unknown }
    if ("url" in f && typeof f.url === "string" && f.source === undefined) {
      out[k] = f.url
    } else if ("source" in f) {
      if (!isBytes(f.source)) {
        // a path or a stream would be read during the decision: I/O the replay could not repeat
        throw new UploadRefused(`${k}: only a Buffer source can be uploaded from a bot handler (read the file first, then pass its bytes)`)
      }
      if (f.source.byteLength > MAX_UPLOAD_BYTES) throw new UploadRefused(`${k}: ${f.source.byteLength} bytes is over Telegram's 50 MB upload limit`)
      const hash = `sha256:${createHash("sha256").update(f.source).digest("hex")}`
      hold(hash, new Uint8Array(f.source))
      const ref: UploadRef = { upload: hash, filename: typeof f.filename === "string" ? f.filename : k, size: f.source.byteLength }
      out[k] = ref
    } else out[k] = v
  }
  return out
}

/** Whether the params hold an upload (the call then goes as multipart/form-data). */
export const hasUploads = (params: Readonly<Record<string, unknown>>): boolean => Object.values(params).some(isUploadRef)

/**
 * The multipart body of a call with uploads: each upload as a file part with its filename, other
 * objects as JSON (as Telegram reads form fields), the rest as text. A reference whose bytes this
 * thread no longer holds yields the missing hash instead (nothing can be sent).
 */
export const multipartOf = (params: Readonly<Record<string, unknown>>): FormData | { readonly missing: string } => {
  const form = new FormData()
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === null) continue
    if (isUploadRef(v)) {
      const bytes = held.get(v.upload)
      if (!bytes) return { missing: v.upload }
      form.append(k, new Blob([bytes]), v.filename)
    } else form.append(k, typeof v === "object" ? JSON.stringify(v) : String(v))
  }
  return form
}
