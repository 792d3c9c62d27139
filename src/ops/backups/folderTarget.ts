import { createReadStream } from "node:fs"
import { access, mkdir, readdir, rm } from "node:fs/promises"
import { join } from "node:path"
import { Effect } from "effect"
import { MANIFEST_FILE } from "../../cli/backup/format.pure.js"
import { BACKUP_NAME, byAge } from "./retention.pure.js"
import { reasonOf, TargetFailed } from "./target.js"
import type { BackupTarget, TargetEntry } from "./target.js"

/**
 * Backups as sub-folders of `root` (created when missing), each written in place: a folder without
 * manifest.json is an unfinished backup. Only folders named like scheduled backups are listed or
 * deleted; anything else in `root` is left alone.
 */
export const folderTarget = (root: string): BackupTarget => {
  const fail = (where: string) => (e: unknown) => new TargetFailed({ where, reason: reasonOf(e) })
  const exists = (path: string) => access(path).then(() => true, () => false)
  return {
    label: root,
    list: Effect.tryPromise({
      try: async () => {
        await mkdir(root, { recursive: true })
        const names = (await readdir(root, { withFileTypes: true })).filter((d) => d.isDirectory() && BACKUP_NAME.test(d.name)).map((d) => d.name)
        const entries: Array<TargetEntry> = []
        for (const name of names.sort(byAge)) entries.push({ name, finished: await exists(join(root, name, MANIFEST_FILE)) })
        return entries
      },
      catch: fail(root)
    }),
    store: (name, write) =>
      Effect.tryPromise({ try: () => mkdir(root, { recursive: true }), catch: fail(root) }).pipe(Effect.zipRight(write(join(root, name)))),
    read: (name, file) =>
      Effect.tryPromise({
        try: async () => {
          const path = join(root, name, file)
          await access(path)
          return createReadStream(path) as AsyncIterable<Buffer>
        },
        catch: fail(`${name}/${file}`)
      }),
    local: (name) => Effect.succeed(join(root, name)),
    remove: (name) => Effect.tryPromise({ try: () => rm(join(root, name), { recursive: true, force: true }), catch: fail(join(root, name)) })
  }
}
