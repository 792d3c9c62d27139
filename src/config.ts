import { randomBytes } from "node:crypto"
import { chmod, mkdir, readFile, writeFile } from "node:fs/promises"
import { hostname } from "node:os"
import { join, resolve } from "node:path"
import { Config, ConfigError, ConfigProvider, Context, Data, Effect, Either, Layer, LogLevel, Option, Redacted } from "effect"
import { Cron } from "croner"
import { clusterUrlOf, isClusterUrl, parseClusterNodes, parseClusterUrl } from "./health/redisUrl.pure.js"

/*
 * Every setting botfleet reads, read and validated here and nowhere else. Sources, strongest first:
 * the environment, then the JSON file named by BOTFLEET_CONFIG (flat, same keys as the variables:
 * `{"PARTITIONS": 32, "LOG_LEVEL": "debug"}`). An empty variable counts as unset.
 */

/** Embedded: PGlite + the Postgres log adapter under DATA_DIR. Production: Redis + a Postgres server. */
export type Mode = "embedded" | "production"

export interface BotfleetConfig {
  readonly mode: Mode
  /** Set in production mode (it may hold a password, hence redacted). */
  readonly databaseUrl: Option.Option<Redacted.Redacted<string>>
  readonly redisUrl: Option.Option<Redacted.Redacted<string>>
  /** Prefix of every Redis key (isolates deployments sharing a Redis, and test suites). */
  readonly redisPrefix: string
  /** Absolute path; PGlite files, the embedded secret key and backups live here. */
  readonly dataDir: string
  /** Embedded mode's PGlite database folder: DATA_DIR/pglite. */
  readonly pgliteDir: string
  readonly partitions: number
  readonly nodeId: string
  readonly httpPort: number
  /** Bot API root without trailing slash, e.g. https://api.telegram.org or the local sandbox. */
  readonly telegramApiRoot: string
  /** Where Telegram reaches this node's ingress (`<publicUrl>/telegram/<botId>`); webhook-mode bots need it. */
  readonly publicUrl: Option.Option<string>
  /** 32 bytes for AES-256-GCM token encryption. */
  readonly secretKey: Redacted.Redacted<Uint8Array>
  readonly logLevel: LogLevel.LogLevel
  /** A snapshot every this many events of a bot's stream. */
  readonly snapshotEvery: number
  readonly leaseTtlMs: number
  /** Renew interval; always below leaseTtlMs. */
  readonly leaseRenewMs: number
  /** An idle bot is passivated (state dropped from memory) after this long without input. */
  readonly passivateAfterMs: number
  /** Worker threads hosting bot actors (piscina); 0: actors on the main thread. Production mode only. */
  readonly workerThreads: number
  /** Bot activations per second a node allows itself (a restart of many bots must not stampede Redis). */
  readonly activationsPerSecond: number
  /** Most bots resident on a node; one more passivates the least recently active. 0: no cap. */
  readonly maxResidentBots: number
  /** ES modules exporting `botModules` (owners' Composer bot kinds), loaded by nodes, their threads and replay. */
  readonly botModules: ReadonlyArray<string>
  /** Users and sessions an actor keeps in memory; past it the least recently used unchanged ones are dropped. */
  readonly maxResidentEntries: number
  /** Inbox entries an actor decides together at most (entries of different chats; their calls go out together). */
  readonly actorBatch: number
  /** `/metrics` labels per-bot series with the bot id too (one series per bot: small fleets only). */
  readonly metricsBotLabels: boolean
  /** REST API requests per token per minute (0: unlimited). */
  readonly apiRateLimit: number
  /** How long a node believes an API token that checked out before reading its row again: the bound on revocation (0: every request). */
  readonly apiTokenCacheSeconds: number
  /** Telegram's sending limits the Bot API sender keeps (per bot /s, per private chat /s, per group /min). */
  readonly sendLimits: { readonly perBotPerSecond: number; readonly perChatPerSecond: number; readonly perGroupPerMinute: number }
  /** Scheduled backups: a cron expression (UTC), or none. */
  readonly backupSchedule: Option.Option<string>
  /** Where scheduled backups go: a folder, or an S3-compatible bucket (`s3://bucket/prefix`). */
  readonly backupTarget: BackupTargetConfig
  /** Finished backups kept in the target; older ones are deleted after each backup. */
  readonly backupKeep: number
  /** Restore drills of the latest backup: a cron expression (UTC), or none. */
  readonly backupDrillSchedule: Option.Option<string>
  /**
   * The login that applies migrations (production mode): a member of botfleet_migrator, able to
   * create roles the first time. None: DATABASE_URL's login migrates (it then owns the schema).
   */
  readonly migrationDatabaseUrl: Option.Option<Redacted.Redacted<string>>
  /** How often a node verifies the audit hash chain and anchors it; 0: never (docs/projections.md). */
  readonly auditVerifyEveryMs: number
  /**
   * Most owners whose bots of their own kinds (BOT_MODULES) get a worker thread of their own, so
   * their code cannot take other owners' bots down; owners past it share one more thread. 0:
   * owners' kinds run on the WORKER_THREADS threads with everyone else's. Production mode only.
   */
  readonly ownerThreads: number
  /** Heap limit of each owner's thread (MB): owner code that exhausts it ends that thread only. */
  readonly ownerThreadHeapMb: number
  /** The hot log keeps at least this many newest events of each bot stream (the archive has them all). */
  readonly hotLogEvents: number
  /** The hot log keeps partition-log entries (and the stream events they are) recorded less than this long ago (ms). */
  readonly hotLogMaxAgeMs: number
  /** How often a node's trimmer visits the partitions (ms). */
  readonly hotLogTrimIntervalMs: number
  /** The OpenAI-compatible server (`.../v1`) of AI bots whose config names none; none: the node's offline stub with the sandbox, else none. */
  readonly aiBaseUrl: Option.Option<string>
  /** The API key of AI bots whose config has none (a bot's own key is sealed in its config). */
  readonly aiApiKey: Option.Option<Redacted.Redacted<string>>
  /**
   * Where the values came from (the environment and the BOTFLEET_CONFIG file as read), so a
   * running node can tell each setting's source and validate a live change exactly as at start.
   * Redacted: it holds every secret the environment does.
   */
  readonly origin?: Redacted.Redacted<ConfigOrigin>
}

/** A backup target: a folder, or a bucket of an S3-compatible store. */
export type BackupTargetConfig =
  | { readonly _tag: "Folder"; readonly path: string }
  | {
      readonly _tag: "S3"
      readonly bucket: string
      /** Key prefix inside the bucket ("" or ending with "/"). */
      readonly prefix: string
      readonly endpoint: string
      readonly region: string
      readonly accessKey: Option.Option<Redacted.Redacted<string>>
      readonly secretKey: Option.Option<Redacted.Redacted<string>>
    }

/** The raw sources of a configuration: the environment's non-blank values and the file's values, as text. */
export interface ConfigOrigin {
  readonly env: Readonly<Record<string, string>>
  readonly file: Readonly<Record<string, string>>
}

/** One documented setting: what `botfleet config` prints and the docs list. */
export interface Setting {
  readonly name: string
  readonly expects: string
  readonly default?: string
  readonly secret?: boolean
  /**
   * The setting may change on a running node (`botfleet config set`, through the control channel):
   * whatever reads it takes the new value without a restart. Settings without it say they need one.
   */
  readonly live?: boolean
}

/** Start-up refused: one entry per bad or missing setting, each naming the variable and what it expects. */
export class ConfigInvalid extends Data.TaggedError("ConfigInvalid")<{
  readonly problems: ReadonlyArray<{ readonly variable: string; readonly problem: string }>
}> {
  override get message() {
    return [
      "botfleet cannot start: its configuration is invalid.",
      ...this.problems.map((p) => `  ${p.variable}: ${p.problem}`),
      "Set these in the environment (or in the JSON file named by BOTFLEET_CONFIG) and start again."
    ].join("\n")
  }
}

const invalid = (name: string, expects: string, raw: string, secret: boolean) =>
  ConfigError.InvalidData([name], `expects ${expects}${secret ? "" : `, got ${JSON.stringify(raw)}`}`)

/** A setting read as text, blank = absent, then parsed; failures name the variable and what it expects. */
const setting = <A>(
  s: Setting,
  parse: (raw: string) => A | undefined
): Config.Config<Option.Option<A>> =>
  Config.option(Config.string(s.name)).pipe(
    Config.mapOrFail((raw) => {
      const text = Option.getOrUndefined(raw)?.trim()
      if (text === undefined || text === "") return Either.right(Option.none())
      const value = parse(text)
      return value === undefined ? Either.left(invalid(s.name, s.expects, text, s.secret === true)) : Either.right(Option.some(value))
    })
  )

const withDefault = <A>(c: Config.Config<Option.Option<A>>, fallback: A): Config.Config<A> =>
  Config.map(c, Option.getOrElse(() => fallback))

const intIn = (min: number, max: number) => (raw: string) => {
  if (!/^-?\d+$/.test(raw)) return undefined
  const n = Number(raw)
  return n >= min && n <= max ? n : undefined
}

const urlWith = (protocols: ReadonlyArray<string>) => (raw: string) => {
  try {
    const u = new URL(raw)
    return protocols.includes(u.protocol) ? raw : undefined
  } catch {
    return undefined
  }
}

const logLevels: Record<string, LogLevel.LogLevel> = {
  all: LogLevel.All,
  trace: LogLevel.Trace,
  debug: LogLevel.Debug,
  info: LogLevel.Info,
  warning: LogLevel.Warning,
  warn: LogLevel.Warning,
  error: LogLevel.Error,
  fatal: LogLevel.Fatal,
  none: LogLevel.None
}

const booleans = new Map<string, boolean>([["true", true], ["false", false], ["yes", true], ["no", false], ["1", true], ["0", false]])

/** Decodes a base64 key that must be exactly 32 bytes. */
export const decodeSecretKey = (raw: string): Uint8Array | undefined => {
  if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(raw)) return undefined
  const bytes = Buffer.from(raw, raw.includes("-") || raw.includes("_") ? "base64url" : "base64")
  return bytes.length === 32 ? new Uint8Array(bytes) : undefined
}

export const settings = {
  databaseUrl: { name: "DATABASE_URL", expects: "a postgres:// or postgresql:// URL", secret: true },
  redisUrl: { name: "REDIS_URL", expects: "a redis://, rediss:// or redis+cluster://host:port,host:port URL", secret: true },
  // Redis Cluster (issue 16): seed nodes; with REDIS_URL too, that URL gives only the password and TLS
  redisClusterNodes: { name: "REDIS_CLUSTER_NODES", expects: "Redis Cluster seed nodes, host:port[,host:port...]", default: "unset: REDIS_URL names one Redis" },
  redisPrefix: { name: "REDIS_PREFIX", expects: "letters, digits, '_', '-' or ':' (at most 32)", default: "bf" },
  dataDir: { name: "DATA_DIR", expects: "a folder path", default: "./.data" },
  partitions: { name: "PARTITIONS", expects: "an integer from 1 to 1024", default: "16" },
  nodeId: { name: "NODE_ID", expects: "a name of letters, digits, '.', '_' or '-' (at most 64)", default: "<hostname>-<pid>" },
  httpPort: { name: "HTTP_PORT", expects: "a TCP port from 0 to 65535", default: "8080" },
  telegramApiRoot: { name: "TELEGRAM_API_ROOT", expects: "an http:// or https:// URL", default: "https://api.telegram.org" },
  publicUrl: {
    name: "PUBLIC_URL",
    expects: "the https:// URL at which Telegram reaches this node's webhook ingress (HTTP_PORT), without /telegram",
    default: "unset: webhook-mode bots cannot start (polling bots need nothing)"
  },
  secretKey: {
    name: "BOTFLEET_SECRET_KEY",
    expects: "32 random bytes in base64 (e.g. `openssl rand -base64 32`)",
    default: "embedded: generated into DATA_DIR/secret.key; production: required",
    secret: true
  },
  logLevel: { name: "LOG_LEVEL", expects: "one of trace, debug, info, warning, error, fatal, none", default: "info", live: true },
  snapshotEvery: { name: "SNAPSHOT_EVERY", expects: "an integer from 1 to 1000000 (events)", default: "500" },
  leaseTtlMs: { name: "LEASE_TTL_MS", expects: "an integer from 1000 to 3600000 (milliseconds)", default: "15000" },
  leaseRenewMs: { name: "LEASE_RENEW_MS", expects: "an integer from 100 to 3600000 (milliseconds), below LEASE_TTL_MS", default: "5000" },
  passivateAfterMs: { name: "PASSIVATE_AFTER_MS", expects: "an integer from 1000 to 86400000 (milliseconds)", default: "300000", live: true },
  workerThreads: { name: "WORKER_THREADS", expects: "an integer from 0 to 256 (0: actors on the main thread)", default: "2" },
  activationsPerSecond: { name: "ACTIVATIONS_PER_SECOND", expects: "an integer from 1 to 100000", default: "200", live: true },
  maxResidentBots: { name: "MAX_RESIDENT_BOTS", expects: "an integer from 0 to 10000000 (0: no cap)", default: "0", live: true },
  botModules: {
    name: "BOT_MODULES",
    expects: "comma-separated paths of ES modules exporting botModules: { <kind>: (config) => Composer }",
    default: "none: only the built-in kind"
  },
  maxResidentEntries: { name: "MAX_RESIDENT_ENTRIES", expects: "an integer from 100 to 100000000 (users and sessions per bot)", default: "25000" },
  actorBatch: { name: "ACTOR_BATCH", expects: "an integer from 1 to 10000 (inbox entries)", default: "64" },
  metricsBotLabels: {
    name: "METRICS_BOT_LABELS",
    expects: "true or false (or 1/0, yes/no): label the per-bot /metrics series with the bot id too (one series per bot: for small fleets)",
    default: "false"
  },
  apiRateLimit: { name: "API_RATE_LIMIT", expects: "an integer from 0 to 1000000 (REST API requests per token per minute; 0: unlimited)", default: "600" },
  apiTokenCacheSeconds: {
    name: "API_TOKEN_CACHE_SECONDS",
    expects: "an integer from 0 to 300 (seconds a node trusts an API token it checked, so a revoked token is refused within this time; 0: checked on every request)",
    default: "5"
  },
  sendPerBot: { name: "SEND_LIMIT_PER_BOT", expects: "an integer from 0 to 100000 (messages per second one bot sends, all chats together; 0: no limit across chats)", default: "30", live: true },
  sendPerChat: { name: "SEND_LIMIT_PER_CHAT", expects: "an integer from 1 to 100 (messages per second to one private chat)", default: "1", live: true },
  sendPerGroup: { name: "SEND_LIMIT_PER_GROUP", expects: "an integer from 1 to 1000 (messages per minute to one group or channel)", default: "20", live: true },
  backupSchedule: {
    name: "BACKUP_SCHEDULE",
    expects: "a cron expression in UTC (5 fields, or 6 with seconds first), e.g. `0 3 * * *`",
    default: "unset: no scheduled backups"
  },
  backupTarget: { name: "BACKUP_TARGET", expects: "a folder path, or s3://<bucket>[/<prefix>] (an S3-compatible bucket)", default: "DATA_DIR/backups" },
  backupS3Endpoint: { name: "BACKUP_S3_ENDPOINT", expects: "the http:// or https:// URL of the S3-compatible server", default: "https://s3.amazonaws.com" },
  backupS3Region: { name: "BACKUP_S3_REGION", expects: "a region name (letters, digits, '-')", default: "us-east-1" },
  backupS3AccessKey: { name: "BACKUP_S3_ACCESS_KEY", expects: "the access key id for BACKUP_TARGET's bucket", default: "unset: anonymous", secret: true },
  backupS3SecretKey: { name: "BACKUP_S3_SECRET_KEY", expects: "the secret access key for BACKUP_TARGET's bucket", default: "unset: anonymous", secret: true },
  backupKeep: { name: "BACKUP_KEEP", expects: "an integer from 1 to 1000 (finished backups kept in BACKUP_TARGET)", default: "7", live: true },
  backupDrillSchedule: {
    name: "BACKUP_DRILL_SCHEDULE",
    expects: "a cron expression in UTC, or `off`",
    default: "`30 4 * * *` (daily) when BACKUP_SCHEDULE is set"
  },
  migrationDatabaseUrl: {
    name: "MIGRATION_DATABASE_URL",
    expects: "a postgres:// or postgresql:// URL of the login that applies migrations (production mode)",
    default: "unset: DATABASE_URL's login applies them",
    secret: true
  },
  auditVerifyEveryMs: {
    name: "AUDIT_VERIFY_EVERY_MS",
    expects: "an integer from 0 to 604800000 (milliseconds; 0: no periodic audit verification)",
    default: "3600000"
  },
  ownerThreads: {
    name: "OWNER_THREADS",
    expects: "an integer from 0 to 1024: most owners whose BOT_MODULES kinds run on a worker thread of their own (0: on the WORKER_THREADS threads)",
    default: "4"
  },
  ownerThreadHeapMb: { name: "OWNER_THREAD_HEAP_MB", expects: "an integer from 32 to 65536 (MB of heap per owner thread)", default: "256" },
  hotLogEvents: { name: "HOT_LOG_EVENTS", expects: "an integer from 1 to 10000000 (events kept per bot stream in the hot log)", default: "100" },
  hotLogMaxAge: {
    name: "HOT_LOG_MAX_AGE",
    expects: "a duration from 0s to 365d: a whole number and a unit, ms, s, m, h or d (e.g. 90s, 10m, 2h)",
    default: "1m"
  },
  hotLogTrimIntervalMs: { name: "HOT_LOG_TRIM_INTERVAL_MS", expects: "an integer from 1000 to 86400000 (milliseconds)", default: "60000" },
  aiBaseUrl: { name: "AI_BASE_URL", expects: "an http:// or https:// URL of an OpenAI-compatible server, e.g. http://127.0.0.1:11434/v1" },
  aiApiKey: { name: "AI_API_KEY", expects: "the model server's API key (secret)", secret: true }
} as const satisfies Record<string, Setting>

/** Every setting by its variable name. */
export const settingsByName: ReadonlyMap<string, Setting> = new Map(Object.values(settings).map((s: Setting) => [s.name, s]))

/** A cron expression croner accepts (5 or 6 fields), or undefined. */
export const parseCron = (raw: string): string | undefined => {
  try {
    new Cron(raw, { paused: true, timezone: "UTC" }).stop()
    return raw
  } catch {
    return undefined
  }
}

const S3_TARGET = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:\/(.*))?$/

/** BACKUP_TARGET as a folder or a bucket and key prefix (the S3 settings are filled in by finalize). */
const parseBackupTarget = (raw: string): { readonly bucket: string; readonly prefix: string } | { readonly path: string } | undefined => {
  if (!raw.startsWith("s3:")) return { path: raw }
  const m = S3_TARGET.exec(raw)
  if (!m) return undefined
  const prefix = (m[2] ?? "").replace(/^\/+|\/+$/g, "")
  return { bucket: m[1]!, prefix: prefix === "" ? "" : `${prefix}/` }
}

const durationUnits: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }

/** `90s`, `10m`, `2h`... as milliseconds, at most 365 days. */
export const parseDuration = (raw: string): number | undefined => {
  const m = /^(\d{1,12})\s*(ms|s|m|h|d)$/.exec(raw)
  if (!m) return undefined
  const ms = Number(m[1]) * durationUnits[m[2]!]!
  return ms <= 365 * 86_400_000 ? ms : undefined
}

/** Everything read from the sources; the secret key is still optional here (embedded mode makes one). */
export const rawConfig = Config.all({
  databaseUrl: setting(settings.databaseUrl, urlWith(["postgres:", "postgresql:"])),
  redisUrl: setting(settings.redisUrl, (s) => (isClusterUrl(s) ? (parseClusterUrl(s) ? s : undefined) : urlWith(["redis:", "rediss:"])(s))),
  redisClusterNodes: setting(settings.redisClusterNodes, parseClusterNodes),
  redisPrefix: withDefault(setting(settings.redisPrefix, (s) => (/^[A-Za-z0-9_:-]{1,32}$/.test(s) ? s : undefined)), "bf"),
  dataDir: withDefault(setting(settings.dataDir, (s) => s), settings.dataDir.default),
  partitions: withDefault(setting(settings.partitions, intIn(1, 1024)), 16),
  nodeId: setting(settings.nodeId, (s) => (/^[A-Za-z0-9._-]{1,64}$/.test(s) ? s : undefined)),
  httpPort: withDefault(setting(settings.httpPort, intIn(0, 65535)), 8080),
  telegramApiRoot: withDefault(
    setting(settings.telegramApiRoot, (s) => urlWith(["http:", "https:"])(s)?.replace(/\/+$/, "")),
    settings.telegramApiRoot.default
  ),
  publicUrl: setting(settings.publicUrl, (s) => urlWith(["http:", "https:"])(s)?.replace(/\/+$/, "")),
  secretKey: setting(settings.secretKey, decodeSecretKey),
  logLevel: withDefault(setting(settings.logLevel, (s) => logLevels[s.toLowerCase()]), LogLevel.Info),
  snapshotEvery: withDefault(setting(settings.snapshotEvery, intIn(1, 1_000_000)), 500),
  leaseTtlMs: withDefault(setting(settings.leaseTtlMs, intIn(1000, 3_600_000)), 15_000),
  leaseRenewMs: withDefault(setting(settings.leaseRenewMs, intIn(100, 3_600_000)), 5_000),
  passivateAfterMs: withDefault(setting(settings.passivateAfterMs, intIn(1000, 86_400_000)), 300_000),
  workerThreads: withDefault(setting(settings.workerThreads, intIn(0, 256)), 2),
  activationsPerSecond: withDefault(setting(settings.activationsPerSecond, intIn(1, 100_000)), 200),
  maxResidentBots: withDefault(setting(settings.maxResidentBots, intIn(0, 10_000_000)), 0),
  botModules: withDefault(
    setting(settings.botModules, (s) => {
      const list = s.split(",").map((x) => x.trim()).filter((x) => x.length > 0)
      return list.length > 0 ? list : undefined
    }),
    [] as ReadonlyArray<string>
  ),
  maxResidentEntries: withDefault(setting(settings.maxResidentEntries, intIn(100, 100_000_000)), 25_000),
  actorBatch: withDefault(setting(settings.actorBatch, intIn(1, 10_000)), 64),
  metricsBotLabels: withDefault(setting(settings.metricsBotLabels, (s) => booleans.get(s.toLowerCase())), false),
  apiRateLimit: withDefault(setting(settings.apiRateLimit, intIn(0, 1_000_000)), 600),
  apiTokenCacheSeconds: withDefault(setting(settings.apiTokenCacheSeconds, intIn(0, 300)), 5),
  sendPerBot: withDefault(setting(settings.sendPerBot, intIn(0, 100_000)), 30),
  sendPerChat: withDefault(setting(settings.sendPerChat, intIn(1, 100)), 1),
  sendPerGroup: withDefault(setting(settings.sendPerGroup, intIn(1, 1000)), 20),
  backupSchedule: setting(settings.backupSchedule, parseCron),
  backupTarget: setting(settings.backupTarget, parseBackupTarget),
  backupS3Endpoint: withDefault(setting(settings.backupS3Endpoint, (s) => urlWith(["http:", "https:"])(s)?.replace(/\/+$/, "")), settings.backupS3Endpoint.default),
  backupS3Region: withDefault(setting(settings.backupS3Region, (s) => (/^[A-Za-z0-9-]{1,64}$/.test(s) ? s : undefined)), settings.backupS3Region.default),
  backupS3AccessKey: setting(settings.backupS3AccessKey, (s) => s),
  backupS3SecretKey: setting(settings.backupS3SecretKey, (s) => s),
  backupKeep: withDefault(setting(settings.backupKeep, intIn(1, 1000)), 7),
  backupDrillSchedule: setting(settings.backupDrillSchedule, (s) => (s.toLowerCase() === "off" ? "off" : parseCron(s))),
  migrationDatabaseUrl: setting(settings.migrationDatabaseUrl, urlWith(["postgres:", "postgresql:"])),
  auditVerifyEveryMs: withDefault(setting(settings.auditVerifyEveryMs, intIn(0, 604_800_000)), 3_600_000),
  ownerThreads: withDefault(setting(settings.ownerThreads, intIn(0, 1024)), 4),
  ownerThreadHeapMb: withDefault(setting(settings.ownerThreadHeapMb, intIn(32, 65_536)), 256),
  hotLogEvents: withDefault(setting(settings.hotLogEvents, intIn(1, 10_000_000)), 100),
  hotLogMaxAgeMs: withDefault(setting(settings.hotLogMaxAge, parseDuration), 60_000),
  hotLogTrimIntervalMs: withDefault(setting(settings.hotLogTrimIntervalMs, intIn(1000, 86_400_000)), 60_000),
  aiBaseUrl: setting(settings.aiBaseUrl, (s) => urlWith(["http:", "https:"])(s)?.replace(/\/+$/, "")),
  aiApiKey: setting(settings.aiApiKey, (s) => s)
}).pipe(
  Config.mapOrFail((c) =>
    c.leaseRenewMs < c.leaseTtlMs
      ? Either.right(c)
      : Either.left(
          ConfigError.InvalidData(
            [settings.leaseRenewMs.name],
            `expects a value below LEASE_TTL_MS (${c.leaseTtlMs}), got ${c.leaseRenewMs}`
          )
        )
  )
)

export type RawConfig = Config.Config.Success<typeof rawConfig>

/** Flattens Effect's ConfigError tree into one problem per variable. */
export const toConfigInvalid = (error: ConfigError.ConfigError): ConfigInvalid => {
  const problems: Array<{ variable: string; problem: string }> = []
  const walk = (e: ConfigError.ConfigError): void => {
    switch (e._op) {
      case "And":
      case "Or":
        walk(e.left)
        walk(e.right)
        return
      case "InvalidData":
      case "MissingData":
      case "SourceUnavailable":
      case "Unsupported":
        problems.push({ variable: e.path.join("_") || "(configuration)", problem: e.message })
        return
    }
  }
  walk(error)
  const seen = new Set<string>()
  return new ConfigInvalid({
    problems: problems.filter((p) => (seen.has(p.variable + p.problem) ? false : (seen.add(p.variable + p.problem), true)))
  })
}

/**
 * The Redis URL in effect: REDIS_URL, or with REDIS_CLUSTER_NODES the `redis+cluster://` URL of
 * those nodes, carrying REDIS_URL's password and TLS choice when it is set too (its host is then
 * not used). A cluster URL in REDIS_URL as well is refused: one of the two names the cluster.
 */
const clusterRedisUrl = (raw: RawConfig): Effect.Effect<Option.Option<string>, ConfigInvalid> => {
  if (Option.isNone(raw.redisClusterNodes)) return Effect.succeed(raw.redisUrl)
  const nodes = raw.redisClusterNodes.value
  if (Option.isNone(raw.redisUrl)) return Effect.succeed(Option.some(clusterUrlOf(nodes)))
  if (isClusterUrl(raw.redisUrl.value)) {
    return Effect.fail(
      new ConfigInvalid({
        problems: [{ variable: settings.redisClusterNodes.name, problem: "is set while REDIS_URL is a redis+cluster:// URL too: name the cluster in one of them" }]
      })
    )
  }
  const base = new URL(raw.redisUrl.value)
  return Effect.succeed(Option.some(clusterUrlOf(nodes, { username: base.username, password: base.password, tls: base.protocol === "rediss:" })))
}

/** REDIS_CLUSTER_NODES as `botfleet config` shows it: the cluster's seed nodes, no password. */
const clusterNodesOf = (url: string): string => {
  const c = parseClusterUrl(url)
  return c ? c.nodes.map((n) => (n.host.includes(":") ? `[${n.host}]:${n.port}` : `${n.host}:${n.port}`)).join(",") : "(unset)"
}

/**
 * Turns what was read into the final config: mode from DATABASE_URL/REDIS_URL (both or neither),
 * the secret key from the setting or, in embedded mode only, from `embeddedKey` (called lazily).
 */
export const finalize = <E, R>(
  raw: RawConfig,
  embeddedKey: (dataDir: string) => Effect.Effect<Uint8Array, E, R>
): Effect.Effect<BotfleetConfig, ConfigInvalid | E, R> =>
  Effect.gen(function* () {
    const hasDb = Option.isSome(raw.databaseUrl)
    const hasRedis = Option.isSome(raw.redisUrl) || Option.isSome(raw.redisClusterNodes)
    const redisUrl = yield* clusterRedisUrl(raw)
    if (hasDb !== hasRedis) {
      const missing = hasDb ? settings.redisUrl : settings.databaseUrl
      return yield* new ConfigInvalid({
        problems: [
          {
            variable: missing.name,
            problem: `expects ${missing.expects}: production mode needs both DATABASE_URL and REDIS_URL (unset both for embedded mode)`
          }
        ]
      })
    }
    if (!hasDb && Option.isSome(raw.migrationDatabaseUrl)) {
      return yield* new ConfigInvalid({
        problems: [{ variable: settings.migrationDatabaseUrl.name, problem: "is for production mode only (with DATABASE_URL and REDIS_URL): embedded mode has one database login" }]
      })
    }
    const mode: Mode = hasDb ? "production" : "embedded"
    const dataDir = resolve(raw.dataDir)
    let key: Uint8Array
    if (Option.isSome(raw.secretKey)) key = raw.secretKey.value
    else if (mode === "embedded") key = yield* embeddedKey(dataDir)
    else {
      return yield* new ConfigInvalid({
        problems: [
          {
            variable: settings.secretKey.name,
            problem: `expects ${settings.secretKey.expects}; production mode requires it (every node must share the same key)`
          }
        ]
      })
    }
    return {
      mode,
      databaseUrl: Option.map(raw.databaseUrl, Redacted.make),
      redisUrl: Option.map(redisUrl, Redacted.make),
      redisPrefix: raw.redisPrefix,
      dataDir,
      pgliteDir: join(dataDir, "pglite"),
      partitions: raw.partitions,
      nodeId: Option.getOrElse(raw.nodeId, () => `${hostname().replace(/[^A-Za-z0-9._-]/g, "-").slice(0, 40)}-${process.pid}`),
      httpPort: raw.httpPort,
      telegramApiRoot: raw.telegramApiRoot,
      publicUrl: raw.publicUrl,
      secretKey: Redacted.make(key),
      logLevel: raw.logLevel,
      snapshotEvery: raw.snapshotEvery,
      leaseTtlMs: raw.leaseTtlMs,
      leaseRenewMs: raw.leaseRenewMs,
      passivateAfterMs: raw.passivateAfterMs,
      workerThreads: raw.workerThreads,
      activationsPerSecond: raw.activationsPerSecond,
      maxResidentBots: raw.maxResidentBots,
      botModules: raw.botModules,
      maxResidentEntries: raw.maxResidentEntries,
      actorBatch: raw.actorBatch,
      metricsBotLabels: raw.metricsBotLabels,
      apiRateLimit: raw.apiRateLimit,
      apiTokenCacheSeconds: raw.apiTokenCacheSeconds,
      sendLimits: { perBotPerSecond: raw.sendPerBot, perChatPerSecond: raw.sendPerChat, perGroupPerMinute: raw.sendPerGroup },
      backupSchedule: raw.backupSchedule,
      backupTarget: backupTargetOf(raw, dataDir),
      backupKeep: raw.backupKeep,
      backupDrillSchedule: drillScheduleOf(raw),
      migrationDatabaseUrl: Option.map(raw.migrationDatabaseUrl, Redacted.make),
      auditVerifyEveryMs: raw.auditVerifyEveryMs,
      ownerThreads: raw.ownerThreads,
      ownerThreadHeapMb: raw.ownerThreadHeapMb,
      hotLogEvents: raw.hotLogEvents,
      hotLogMaxAgeMs: raw.hotLogMaxAgeMs,
      hotLogTrimIntervalMs: raw.hotLogTrimIntervalMs,
      aiBaseUrl: raw.aiBaseUrl,
      aiApiKey: Option.map(raw.aiApiKey, Redacted.make)
    }
  })

const backupTargetOf = (raw: RawConfig, dataDir: string): BackupTargetConfig => {
  const t = Option.getOrUndefined(raw.backupTarget)
  if (t === undefined) return { _tag: "Folder", path: join(dataDir, "backups") }
  if ("path" in t) return { _tag: "Folder", path: resolve(t.path) }
  return {
    _tag: "S3",
    bucket: t.bucket,
    prefix: t.prefix,
    endpoint: raw.backupS3Endpoint,
    region: raw.backupS3Region,
    accessKey: Option.map(raw.backupS3AccessKey, Redacted.make),
    secretKey: Option.map(raw.backupS3SecretKey, Redacted.make)
  }
}

/** Drills follow backups daily unless set otherwise; `off` turns them off. */
const drillScheduleOf = (raw: RawConfig): Option.Option<string> => {
  if (Option.isNone(raw.backupSchedule)) return Option.none()
  const d = Option.getOrElse(raw.backupDrillSchedule, () => "30 4 * * *")
  return d === "off" ? Option.none() : Option.some(d)
}

/**
 * Embedded mode's key: read from DATA_DIR/secret.key, or generated there (mode 0600) on first start.
 * A malformed key file stops start-up rather than being silently replaced: tokens encrypted with it
 * would otherwise become unreadable.
 */
export const embeddedSecretKey = (dataDir: string): Effect.Effect<Uint8Array, ConfigInvalid> => {
  const file = join(dataDir, "secret.key")
  const problem = (p: string) => new ConfigInvalid({ problems: [{ variable: settings.secretKey.name, problem: p }] })
  return Effect.tryPromise({
    try: async () => {
      const existing = await readFile(file, "utf8").catch((e: NodeJS.ErrnoException) => {
        if (e.code === "ENOENT") return undefined
        throw e
      })
      if (existing !== undefined) {
        const key = decodeSecretKey(existing.trim())
        if (key === undefined) throw new Error(`${file} does not hold 32 bytes in base64; restore it from a backup or set BOTFLEET_SECRET_KEY`)
        return key
      }
      await mkdir(dataDir, { recursive: true })
      const key = new Uint8Array(randomBytes(32))
      await writeFile(file, Buffer.from(key).toString("base64") + "\n", { mode: 0o600, flag: "wx" })
      await chmod(file, 0o600)
      return key
    },
    catch: (e) => problem(`unset, and the embedded key file could not be used: ${e instanceof Error ? e.message : String(e)}`)
  })
}

/** The environment's non-blank values. */
const envValues = (env: Readonly<Record<string, string | undefined>>): Record<string, string> =>
  Object.fromEntries(Object.entries(env).filter((kv): kv is [string, string] => kv[1] !== undefined && kv[1].trim() !== ""))

/** Reads the JSON file named by BOTFLEET_CONFIG (if set) into flat text values. */
const readConfigFile = (env: Readonly<Record<string, string | undefined>>): Effect.Effect<Record<string, string>, ConfigInvalid> => {
  const path = env["BOTFLEET_CONFIG"]?.trim()
  if (!path) return Effect.succeed({})
  const problem = (p: string) => new ConfigInvalid({ problems: [{ variable: "BOTFLEET_CONFIG", problem: p }] })
  return Effect.tryPromise({ try: () => readFile(path, "utf8"), catch: (e) => problem(`expects a readable JSON file, but ${path}: ${e instanceof Error ? e.message : String(e)}`) }).pipe(
    Effect.flatMap((text) =>
      Effect.try({ try: () => JSON.parse(text) as unknown, catch: (e) => problem(`expects a JSON file, but ${path} is not JSON: ${e instanceof Error ? e.message : String(e)}`) })
    ),
    Effect.filterOrFail(
      (json): json is Record<string, unknown> => typeof json === "object" && json !== null && !Array.isArray(json),
      () => problem(`expects a JSON object of settings in ${path}, e.g. {"PARTITIONS": 32}`)
    ),
    Effect.map((json) => {
      const flat: Record<string, string> = {}
      for (const [k, v] of Object.entries(json)) {
        if (v !== null && v !== undefined) flat[k] = typeof v === "string" ? v : JSON.stringify(v)
      }
      return flat
    })
  )
}

/** Values of `overlay` first, then the environment, then the file. */
const providerOf = (origin: ConfigOrigin, overlay: Readonly<Record<string, string>> = {}): ConfigProvider.ConfigProvider =>
  ConfigProvider.fromMap(new Map(Object.entries(overlay))).pipe(
    ConfigProvider.orElse(() => ConfigProvider.fromMap(new Map(Object.entries(origin.env)))),
    ConfigProvider.orElse(() => ConfigProvider.fromMap(new Map(Object.entries(origin.file))))
  )

/** The environment, backed by the JSON file named by BOTFLEET_CONFIG when set. */
export const configProvider = (env: Readonly<Record<string, string | undefined>> = process.env): Effect.Effect<ConfigProvider.ConfigProvider, ConfigInvalid> =>
  Effect.map(readConfigFile(env), (file) => providerOf({ env: envValues(env), file }))

/** Reads, validates and finalizes the configuration from `env` (default: process.env) and BOTFLEET_CONFIG. */
export const loadConfig = (env: Readonly<Record<string, string | undefined>> = process.env): Effect.Effect<BotfleetConfig, ConfigInvalid> =>
  Effect.gen(function* () {
    const origin: ConfigOrigin = { env: envValues(env), file: yield* readConfigFile(env) }
    const raw = yield* Effect.withConfigProvider(rawConfig, providerOf(origin)).pipe(Effect.mapError(toConfigInvalid))
    const config = yield* finalize(raw, embeddedSecretKey)
    return { ...config, origin: Redacted.make(origin) }
  })

/** Where a setting's value in effect comes from. */
export type SettingSource = "default" | "env" | "file" | "live"

/** Each setting's source in `origin` (live values are the caller's to know). */
export const sourceOf = (origin: ConfigOrigin | undefined, name: string): Exclude<SettingSource, "live"> =>
  origin === undefined ? "default" : name in origin.env ? "env" : name in origin.file ? "file" : "default"

/**
 * The configuration `config` would have with `overlay` (variable name → text) set over its
 * environment and file: parsed and validated exactly as at start-up, cross-checks included. The
 * secret key and the generated node id stay what they are. Fails with ConfigInvalid naming the
 * variable and what it expects.
 */
export const reconfigure = (config: BotfleetConfig, overlay: Readonly<Record<string, string>>): Effect.Effect<BotfleetConfig, ConfigInvalid> =>
  Effect.gen(function* () {
    const origin: ConfigOrigin = config.origin ? Redacted.value(config.origin) : { env: {}, file: {} }
    const raw = yield* Effect.withConfigProvider(rawConfig, providerOf(origin, overlay)).pipe(Effect.mapError(toConfigInvalid))
    const next = yield* finalize({ ...raw, nodeId: Option.some(config.nodeId) }, () => Effect.succeed(Redacted.value(config.secretKey)))
    return { ...next, origin: Redacted.make(origin) }
  })

/** The validated configuration; provide with `AppConfigLive` (or `Layer.succeed` in tests). */
export class AppConfig extends Context.Tag("botfleet/AppConfig")<AppConfig, BotfleetConfig>() {}

/** Loads the configuration once at start-up; a bad setting fails the layer with ConfigInvalid. */
export const AppConfigLive: Layer.Layer<AppConfig, ConfigInvalid> = Layer.effect(AppConfig, loadConfig())

/** The effective configuration for display: secrets replaced by "[redacted]" or "(unset)". */
export const describeConfig = (c: BotfleetConfig): Record<string, string | number> => ({
  mode: c.mode,
  DATABASE_URL: Option.isSome(c.databaseUrl) ? "[redacted]" : "(unset)",
  REDIS_URL: Option.isSome(c.redisUrl) ? "[redacted]" : "(unset)",
  REDIS_CLUSTER_NODES: Option.match(c.redisUrl, { onNone: () => "(unset)", onSome: (u) => clusterNodesOf(Redacted.value(u)) }),
  REDIS_PREFIX: c.redisPrefix,
  DATA_DIR: c.dataDir,
  PARTITIONS: c.partitions,
  NODE_ID: c.nodeId,
  HTTP_PORT: c.httpPort,
  TELEGRAM_API_ROOT: c.telegramApiRoot,
  PUBLIC_URL: Option.getOrElse(c.publicUrl, () => "(unset)"),
  BOTFLEET_SECRET_KEY: "[redacted]",
  LOG_LEVEL: c.logLevel.label,
  SNAPSHOT_EVERY: c.snapshotEvery,
  LEASE_TTL_MS: c.leaseTtlMs,
  LEASE_RENEW_MS: c.leaseRenewMs,
  PASSIVATE_AFTER_MS: c.passivateAfterMs,
  WORKER_THREADS: c.workerThreads,
  ACTIVATIONS_PER_SECOND: c.activationsPerSecond,
  MAX_RESIDENT_BOTS: c.maxResidentBots,
  BOT_MODULES: c.botModules.length > 0 ? c.botModules.join(",") : "(none)",
  MAX_RESIDENT_ENTRIES: c.maxResidentEntries,
  ACTOR_BATCH: c.actorBatch,
  METRICS_BOT_LABELS: String(c.metricsBotLabels),
  API_RATE_LIMIT: c.apiRateLimit,
  API_TOKEN_CACHE_SECONDS: c.apiTokenCacheSeconds,
  SEND_LIMIT_PER_BOT: c.sendLimits.perBotPerSecond,
  SEND_LIMIT_PER_CHAT: c.sendLimits.perChatPerSecond,
  SEND_LIMIT_PER_GROUP: c.sendLimits.perGroupPerMinute,
  BACKUP_SCHEDULE: Option.getOrElse(c.backupSchedule, () => "(unset)"),
  BACKUP_TARGET: c.backupTarget._tag === "Folder" ? c.backupTarget.path : `s3://${c.backupTarget.bucket}/${c.backupTarget.prefix}`,
  BACKUP_S3_ENDPOINT: c.backupTarget._tag === "S3" ? c.backupTarget.endpoint : "(unused)",
  BACKUP_S3_REGION: c.backupTarget._tag === "S3" ? c.backupTarget.region : "(unused)",
  BACKUP_S3_ACCESS_KEY: c.backupTarget._tag === "S3" && Option.isSome(c.backupTarget.accessKey) ? "[redacted]" : "(unset)",
  BACKUP_S3_SECRET_KEY: c.backupTarget._tag === "S3" && Option.isSome(c.backupTarget.secretKey) ? "[redacted]" : "(unset)",
  BACKUP_KEEP: c.backupKeep,
  BACKUP_DRILL_SCHEDULE: Option.getOrElse(c.backupDrillSchedule, () => "(off)"),
  MIGRATION_DATABASE_URL: Option.isSome(c.migrationDatabaseUrl) ? "[redacted]" : "(unset)",
  AUDIT_VERIFY_EVERY_MS: c.auditVerifyEveryMs,
  OWNER_THREADS: c.ownerThreads,
  OWNER_THREAD_HEAP_MB: c.ownerThreadHeapMb,
  HOT_LOG_EVENTS: c.hotLogEvents,
  HOT_LOG_MAX_AGE: formatDuration(c.hotLogMaxAgeMs),
  HOT_LOG_TRIM_INTERVAL_MS: c.hotLogTrimIntervalMs,
  AI_BASE_URL: Option.getOrElse(c.aiBaseUrl, () => "(unset)"),
  AI_API_KEY: Option.isSome(c.aiApiKey) ? "[redacted]" : "(unset)"
})

/** Milliseconds in the largest unit that divides them exactly (as HOT_LOG_MAX_AGE is written). */
export const formatDuration = (ms: number): string => {
  for (const unit of ["d", "h", "m", "s"] as const) {
    if (ms > 0 && ms % durationUnits[unit]! === 0) return `${ms / durationUnits[unit]!}${unit}`
  }
  return `${ms}ms`
}
