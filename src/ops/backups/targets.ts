import { join } from "node:path"
import type { BotfleetConfig } from "../../config.js"
import { folderTarget } from "./folderTarget.js"
import { s3Target } from "./s3Target.js"
import type { BackupTarget } from "./target.js"

/** BACKUP_TARGET: its folder, or its bucket (S3 uploads staged under DATA_DIR/backup-staging). */
export const backupTargetFor = (c: Pick<BotfleetConfig, "backupTarget" | "dataDir">): BackupTarget =>
  c.backupTarget._tag === "Folder" ? folderTarget(c.backupTarget.path) : s3Target(c.backupTarget, join(c.dataDir, "backup-staging"))
