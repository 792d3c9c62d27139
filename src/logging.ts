import { Cause, Context, Effect, HashMap, Layer, List, Logger, LogLevel } from "effect"
import { AppConfig } from "./config.js"

/*
 * Structured logs: one JSON object per line, `{level, time, message, ...annotations}`. Annotations
 * set with `Effect.annotateLogs` (botId, correlationId, version...) become top-level fields.
 * Secrets are redacted HERE, at the logger, so no call site can leak one by forgetting to.
 */

export const REDACTED = "[redacted]"

/** Keys whose values are never printed, whatever they hold. */
const secretKey = /token|secret|password|passwd|authorization|api[-_]?key|cookie|credential|ciphertext/i

/** A Telegram bot token (`<bot id>:<35 characters>`), wherever it appears inside a string. */
const botToken = /\d+:[A-Za-z0-9_-]{35}/g
/** Credentials inside URLs: `scheme://user:password@host`. */
const urlCredentials = /([a-z][a-z0-9+.-]*:\/\/)[^/\s:@]+:[^/\s@]+@/gi

/** Replaces anything that looks like a token or URL credentials in a string. */
export const redactString = (s: string): string =>
  s.replace(botToken, REDACTED).replace(urlCredentials, `$1${REDACTED}@`)

/**
 * A JSON-safe copy of `value` with secrets redacted: values under secret-looking keys, bot tokens
 * and URL credentials inside strings. Handles cycles, bigints, Errors, Maps and Sets.
 */
export const redact = (value: unknown, seen: WeakSet<object> = new WeakSet()): unknown => {
  if (typeof value === "string") return redactString(value)
  if (typeof value === "bigint") return value.toString()
  if (typeof value === "function" || typeof value === "symbol") return undefined
  if (value === null || typeof value !== "object") return value
  if (seen.has(value)) return "[circular]"
  seen.add(value)
  try {
    if (value instanceof Error) {
      return { name: value.name, message: redactString(value.message), ...(redactRecord(Object.entries(value), seen) as object) }
    }
    if (value instanceof Date) return value.toISOString()
    if (value instanceof Map) return redactRecord([...value.entries()].map(([k, v]) => [String(k), v]), seen)
    if (value instanceof Set) return [...value].map((v) => redact(v, seen))
    if (Array.isArray(value)) return value.map((v) => redact(v, seen))
    if (value instanceof Uint8Array) return `[${value.length} bytes]`
    const json = (value as { toJSON?: () => unknown }).toJSON
    if (typeof json === "function") return redact(json.call(value), seen)
    return redactRecord(Object.entries(value), seen)
  } finally {
    seen.delete(value)
  }
}

const redactRecord = (entries: ReadonlyArray<readonly [string, unknown]>, seen: WeakSet<object>): Record<string, unknown> => {
  const out: Record<string, unknown> = {}
  for (const [k, v] of entries) out[redactString(k)] = secretKey.test(k) ? REDACTED : redact(v, seen)
  return out
}

const reserved = new Set(["level", "time", "message", "cause", "spans"])

const messageText = (message: unknown): string => {
  const parts = Array.isArray(message) ? message : [message]
  return parts
    .map((p) => {
      const r = redact(p)
      return typeof r === "string" ? r : JSON.stringify(r)
    })
    .join(" ")
}

/** Formats one log call as a JSON line (without the newline). Exposed for tests and other sinks. */
export const formatLogLine = (o: {
  readonly logLevel: LogLevel.LogLevel
  readonly message: unknown
  readonly date: Date
  readonly annotations: HashMap.HashMap<string, unknown>
  readonly cause: Cause.Cause<unknown>
  readonly spans: List.List<{ readonly label: string; readonly startTime: number }>
}): string => {
  const line: Record<string, unknown> = {
    level: o.logLevel.label.toLowerCase(),
    time: o.date.toISOString(),
    message: messageText(o.message)
  }
  for (const [k, v] of HashMap.toEntries(o.annotations)) {
    const key = reserved.has(k) ? `annotation.${k}` : redactString(k)
    line[key] = secretKey.test(k) ? REDACTED : redact(v)
  }
  if (!Cause.isEmpty(o.cause)) line["cause"] = redactString(Cause.pretty(o.cause))
  const now = o.date.getTime()
  const spans = List.toArray(o.spans)
  if (spans.length > 0) line["spans"] = Object.fromEntries(spans.map((s) => [s.label, now - s.startTime]))
  return JSON.stringify(line)
}

/** A logger writing redacted JSON lines through `write` (default: stdout). */
export const jsonLogger = (write: (line: string) => void = (l) => void process.stdout.write(l + "\n")): Logger.Logger<unknown, void> =>
  Logger.make((o) => write(formatLogLine(o)))

/**
 * The process's log level, changeable while it runs (LOG_LEVEL is a live setting: `botfleet
 * config set LOG_LEVEL=debug`). The logger reads it on every line, so a change applies at once
 * to every fiber, forked before or after it.
 */
export class LogLevelSwitch extends Context.Tag("botfleet/LogLevelSwitch")<LogLevelSwitch, { level: LogLevel.LogLevel }>() {}

/**
 * Installs the JSON logger in place of Effect's default one, at `level`, and provides the
 * LogLevelSwitch that changes it later. The CLI passes a stderr writer so that stdout carries only
 * command output (e.g. `--json`).
 */
export const jsonLoggerLayer = (options: {
  readonly level: LogLevel.LogLevel
  readonly write?: (line: string) => void
}): Layer.Layer<LogLevelSwitch> => {
  const levelSwitch = { level: options.level }
  const logger = Logger.filterLogLevel(jsonLogger(options.write), (level) => LogLevel.greaterThanEqual(level, levelSwitch.level))
  // Effect's own minimum drops lines before any logger sees them: open it fully, the switch filters
  return Layer.mergeAll(Logger.replace(Logger.defaultLogger, Logger.map(logger, () => undefined)), Logger.minimumLogLevel(LogLevel.All), Layer.succeed(LogLevelSwitch, levelSwitch))
}

/** The JSON logger at the configured LOG_LEVEL, writing to stdout. */
export const LoggingLive: Layer.Layer<LogLevelSwitch, never, AppConfig> = Layer.unwrapEffect(
  Effect.map(AppConfig, (c) => jsonLoggerLayer({ level: c.logLevel }))
)
