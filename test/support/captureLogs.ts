import { Effect, Exit, LogLevel, Scope } from "effect"
import { logDependencyHealthHere } from "../../src/health/processHealth.js"
import { jsonLoggerLayer } from "../../src/logging.js"

/**
 * Captures the JSON lines this process logs about its dependencies (processHealth.ts) until
 * `stop`: what an operator would read in the node's log.
 */
export const captureDependencyLogs = () => {
  const lines: Array<Record<string, unknown>> = []
  const scope = Effect.runSync(Scope.make())
  Effect.runSync(
    Scope.extend(logDependencyHealthHere, scope).pipe(
      Effect.provide(jsonLoggerLayer({ level: LogLevel.Debug, write: (l) => lines.push(JSON.parse(l) as Record<string, unknown>) }))
    )
  )
  return { lines, stop: () => Effect.runSync(Scope.close(scope, Exit.void)) }
}
