/*
 * The names of a bot's keyed state entries, and what a user entry holds: apart from entries.ts
 * so the legacy fold (legacy.ts), which entries.ts consults, can use them without a cycle.
 */

/** What the bot remembers of a user. */
export interface KnownUser {
  readonly firstName: string
  readonly lastName?: string | undefined
  readonly username?: string | undefined
  readonly languageCode?: string | undefined
  readonly firstSeen: string
  readonly lastSeen: string
  readonly blocked: boolean
  /** When the block was learned (a 403 recorded). */
  readonly blockedAt?: string | undefined
  /**
   * The newest inbox entry when the block was learned: a private message in a later entry was
   * written after the block, so the user has unblocked the bot. Absent for blocks recorded before
   * it existed (then the receive time is compared with `blockedAt`).
   */
  readonly blockedAfterEntry?: string | undefined
}

export const userKey = (userId: number): string => `u:${userId}`
export const sessionKey = (key: string): string => `s:${key}`
/** The entry of a legacy record of `collection` under `key` (sessions excepted: they are session entries). */
export const legacyKey = (collection: string, key: string): string => `l:${collection}:${key}`
/** What the bot learned of how a user likes to be spoken to (PersonalityAdapted). */
export const adaptationKey = (userId: number): string => `p:${userId}`
