import { createHash } from "node:crypto"
import { Effect, Either } from "effect"
import { MANIFEST_FILE, parseManifest } from "../../cli/backup/format.pure.js"
import type { Manifest } from "../../cli/backup/format.pure.js"
import type { BackupTarget } from "./target.js"

/** What verifying a stored backup found: ok when every file matches the manifest. */
export interface Verification {
  readonly ok: boolean
  readonly manifest: Manifest | null
  /** One line per problem: the file and what is wrong with it. */
  readonly problems: ReadonlyArray<string>
  /** Bytes read back (the manifest excluded). */
  readonly bytes: number
}

const NEWLINE = 0x0a

/**
 * Reads a stored backup back from its target and checks it against its manifest: the manifest
 * parses, every file it lists is there with the size, sha-256 and line count it records. Files are
 * streamed, never held whole. A backup that cannot be read counts as failed, with the reason;
 * verification never fails as an effect, it reports.
 */
export const verifyStored = (target: BackupTarget, name: string): Effect.Effect<Verification> =>
  Effect.gen(function* () {
    const problems: Array<string> = []
    const text = yield* Effect.either(
      target.read(name, MANIFEST_FILE).pipe(
        Effect.flatMap((chunks) =>
          Effect.tryPromise({
            try: async () => {
              const parts: Array<Buffer> = []
              for await (const c of chunks) parts.push(Buffer.from(c))
              return Buffer.concat(parts).toString("utf8")
            },
            catch: (e) => new Error(`${MANIFEST_FILE}: cannot read it: ${e instanceof Error ? e.message : String(e)}`)
          })
        )
      )
    )
    if (Either.isLeft(text)) return { ok: false, manifest: null, problems: [`${MANIFEST_FILE}: missing or unreadable (${text.left.message}): the backup is unfinished`], bytes: 0 }
    const manifest = parseManifest(text.right)
    if (Either.isLeft(manifest)) return { ok: false, manifest: null, problems: [`${MANIFEST_FILE}: ${manifest.left}`], bytes: 0 }
    let bytes = 0
    for (const f of manifest.right.files) {
      const read = yield* Effect.either(
        target.read(name, f.file).pipe(
          Effect.flatMap((chunks) =>
            Effect.tryPromise({
              try: async () => {
                const hash = createHash("sha256")
                let size = 0
                let lines = 0
                for await (const chunk of chunks) {
                  const b = Buffer.from(chunk)
                  hash.update(b)
                  size += b.length
                  for (let i = b.indexOf(NEWLINE); i !== -1; i = b.indexOf(NEWLINE, i + 1)) lines++
                }
                return { size, lines, sha256: hash.digest("hex") }
              },
              catch: (e) => e
            })
          )
        )
      )
      if (Either.isLeft(read)) {
        problems.push(`${f.file}: cannot read it: ${read.left instanceof Error ? read.left.message : String(read.left)}`)
        continue
      }
      const r = read.right
      bytes += r.size
      if (r.size !== f.bytes || r.sha256 !== f.sha256) problems.push(`${f.file}: checksum mismatch (sha-256 ${r.sha256}, ${r.size} bytes; the manifest says ${f.sha256}, ${f.bytes} bytes)`)
      else if (r.lines !== f.count) problems.push(`${f.file}: holds ${r.lines} lines, the manifest says ${f.count}`)
    }
    return { ok: problems.length === 0, manifest: manifest.right, problems, bytes }
  })
