import { mkdir, readdir, rm } from "node:fs/promises"
import { join } from "node:path"
import { Effect, Option, Redacted } from "effect"
import * as Minio from "minio"
import type { BackupTargetConfig } from "../../config.js"
import { MANIFEST_FILE } from "../../cli/backup/format.pure.js"
import { BACKUP_NAME, byAge } from "./retention.pure.js"
import { reasonOf, TargetFailed } from "./target.js"
import type { BackupTarget, TargetEntry } from "./target.js"

type S3Config = Extract<BackupTargetConfig, { _tag: "S3" }>

/**
 * Backups in a bucket of an S3-compatible store, through the `minio` client: each file of backup
 * `name` is the object `<prefix><name>/<file>`. A backup is written to a local staging folder
 * (`staging`), then uploaded file by file with manifest.json LAST, so a backup without its
 * manifest object is unfinished, as in a folder. Reading streams objects back; the restore drill
 * downloads a backup into the staging folder and removes it afterwards.
 */
export const s3Target = (c: S3Config, staging: string): BackupTarget => {
  const url = new URL(c.endpoint)
  const client = new Minio.Client({
    endPoint: url.hostname,
    port: url.port === "" ? (url.protocol === "https:" ? 443 : 80) : Number(url.port),
    useSSL: url.protocol === "https:",
    accessKey: Option.match(c.accessKey, { onNone: () => "", onSome: Redacted.value }),
    secretKey: Option.match(c.secretKey, { onNone: () => "", onSome: Redacted.value }),
    region: c.region,
    // S3-compatible servers rarely serve virtual-host buckets; AWS accepts path-style too
    pathStyle: true
  })
  const label = `s3://${c.bucket}/${c.prefix}`
  const key = (name: string, file: string) => `${c.prefix}${name}/${file}`
  const fail = (where: string) => (e: unknown) => new TargetFailed({ where, reason: reasonOf(e) })

  const objectsUnder = async (prefix: string): Promise<Array<string>> => {
    const keys: Array<string> = []
    for await (const o of client.listObjectsV2(c.bucket, prefix, true)) if (typeof o.name === "string") keys.push(o.name)
    return keys
  }

  const download = async (name: string, dir: string) => {
    await rm(dir, { recursive: true, force: true })
    await mkdir(dir, { recursive: true })
    for (const k of await objectsUnder(key(name, ""))) {
      const file = k.slice(key(name, "").length)
      if (file.includes("/") || file === "") continue
      await client.fGetObject(c.bucket, k, join(dir, file))
    }
  }

  return {
    label,
    list: Effect.tryPromise({
      try: async () => {
        const byName = new Map<string, boolean>()
        for (const k of await objectsUnder(c.prefix)) {
          const [name, file] = k.slice(c.prefix.length).split("/")
          if (name === undefined || !BACKUP_NAME.test(name)) continue
          byName.set(name, byName.get(name) === true || file === MANIFEST_FILE)
        }
        return [...byName].map(([name, finished]): TargetEntry => ({ name, finished })).sort((a, b) => byAge(a.name, b.name))
      },
      catch: fail(label)
    }),
    store: (name, write) =>
      Effect.gen(function* () {
        const dir = join(staging, name)
        yield* Effect.tryPromise({ try: () => rm(dir, { recursive: true, force: true }), catch: fail(dir) })
        return yield* Effect.gen(function* () {
          const result = yield* write(dir)
          yield* Effect.tryPromise({
            try: async () => {
              const files = (await readdir(dir)).sort((a, b) => (a === MANIFEST_FILE ? 1 : b === MANIFEST_FILE ? -1 : a < b ? -1 : 1))
              for (const f of files) await client.fPutObject(c.bucket, key(name, f), join(dir, f))
            },
            catch: fail(`${label}${name}`)
          })
          return result
        }).pipe(Effect.ensuring(Effect.promise(() => rm(dir, { recursive: true, force: true }).catch(() => undefined))))
      }),
    read: (name, file) => Effect.tryPromise({ try: async () => (await client.getObject(c.bucket, key(name, file))) as AsyncIterable<Buffer>, catch: fail(`${label}${name}/${file}`) }),
    local: (name) => {
      const dir = join(staging, `drill-${name}`)
      return Effect.acquireRelease(
        Effect.tryPromise({ try: () => download(name, dir).then(() => dir), catch: fail(`${label}${name}`) }),
        () => Effect.promise(() => rm(dir, { recursive: true, force: true }).catch(() => undefined))
      )
    },
    remove: (name) =>
      Effect.tryPromise({
        try: async () => {
          // one by one: some S3-compatible servers mishandle parallel deletes of one prefix
          for (const k of await objectsUnder(key(name, ""))) await client.removeObject(c.bucket, k)
        },
        catch: fail(`${label}${name}`)
      })
  }
}

