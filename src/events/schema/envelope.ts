import type { DomainEvent, EventType } from "./catalogue.js"

/** Who caused an event: `owner:<id>`, `token:<id>` (an API token), `user:<telegram id>`, `system`, `import:<id>`. */
export type Actor = string

/** An event as the log stores it. `version` is the bot stream's 1-based position. */
export interface EventEnvelope<E extends DomainEvent = DomainEvent> {
  readonly eventId: string
  readonly botId: string
  readonly version: number
  readonly type: E["_tag"]
  readonly schemaVersion: number
  readonly occurredAt: string
  readonly correlationId: string
  readonly causationId: string | null
  readonly actor: Actor
  readonly data: E
}

/** An event read back from the log, with its position in its partition log. */
export interface RecordedEvent<E extends DomainEvent = DomainEvent> extends EventEnvelope<E> {
  /** Opaque, adapter-specific, ordered within a partition. */
  readonly position: string
  readonly partition: number
  /**
   * When the log recorded the event (ISO-8601, the log server's clock): grows with the version,
   * unlike `occurredAt` (a fact's own time, e.g. when its update was received). Undefined where
   * the store does not know it (events archived before the archive kept it).
   */
  readonly recordedAt?: string | undefined
}

/** What a writer hands the log: the log assigns version (and the eventId when absent). */
export interface NewEvent<E extends DomainEvent = DomainEvent> {
  readonly data: E
  readonly eventId?: string
  readonly occurredAt: string
  readonly correlationId: string
  readonly causationId?: string | null
  readonly actor: Actor
}

export type { DomainEvent, EventType }
