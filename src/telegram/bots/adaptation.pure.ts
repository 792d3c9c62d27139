import type { Adaptation, Formality, ReplyLength } from "./persona.pure.js"
import { FORMALITIES, REPLY_LENGTHS } from "./persona.pure.js"

/**
 * Per-user adaptation, pure: what a user's messages say about how they like to be spoken to (their
 * language, formality, preferred reply length). Each message is read on its own; only a clear
 * signal changes what is known, and a change is recorded as one `PersonalityAdapted` event (so it
 * shows in `inspect` and replays), never a message that merely agrees with what is known.
 */

/** Common words that give a language away in a short message (lower case, whole words). */
const MARKERS: ReadonlyArray<readonly [string, RegExp]> = [
  ["de", /\b(ich|nicht|und|bitte|danke|hallo|wie|ist|sie|mein|guten)\b/giu],
  ["fr", /\b(je|pas|et|merci|bonjour|vous|est|le|la|mon|comment)\b/giu],
  ["es", /\b(yo|no|gracias|hola|usted|está|el|mi|cómo|por favor|qué)\b/giu],
  ["en", /\b(i|the|and|please|thanks|hello|you|is|my|what|how)\b/giu]
]

/** The language of a text when it is clear (two marker words, or Cyrillic script), else undefined. */
export const detectLanguage = (text: string): string | undefined => {
  if (/\p{Script=Cyrillic}{3,}/u.test(text)) return /[іїєґ]/iu.test(text) ? "uk" : "ru"
  let best: string | undefined
  let bestCount = 1
  for (const [lang, re] of MARKERS) {
    const n = text.match(re)?.length ?? 0
    if (n > bestCount) {
      best = lang
      bestCount = n
    }
  }
  return best
}

const FORMAL = /\b(please|could you|would you|kindly|dear|sir|madam|regards|thank you|bitte|sie|vous|usted)\b/iu
const CASUAL = /\b(hey|hi|yo|lol|thx|pls|gonna|wanna|cool|ok|okay|hallo|salut|hola)\b|!!|:\)|\p{Extended_Pictographic}/iu

/** Formality when the message shows it, else undefined (a neutral message says nothing). */
export const detectFormality = (text: string): Formality | undefined => {
  const formal = FORMAL.test(text)
  const casual = CASUAL.test(text)
  return formal && !casual ? "formal" : casual && !formal ? "casual" : undefined
}

/** The reply length a message asks for by its own length: terse users get short answers. */
export const detectLength = (text: string): ReplyLength | undefined => {
  const n = text.trim().length
  return n === 0 ? undefined : n <= 25 ? "short" : n >= 160 ? "long" : "medium"
}

/** An adaptation entry as stored (`p:<user>`), read leniently. */
export const readAdaptation = (v: unknown): Adaptation => {
  const o = (typeof v === "object" && v !== null ? v : {}) as Record<string, unknown>
  return {
    ...(typeof o["language"] === "string" ? { language: o["language"] } : {}),
    ...(FORMALITIES.includes(o["formality"] as Formality) ? { formality: o["formality"] as Formality } : {}),
    ...(REPLY_LENGTHS.includes(o["length"] as ReplyLength) ? { length: o["length"] as ReplyLength } : {})
  }
}

/**
 * What one message changes in a user's adaptation: only the fields that differ (undefined when
 * nothing does). Telegram's `language_code` (the user's app language) is used when the text itself
 * does not show one.
 */
export const adaptationChange = (known: Adaptation, message: { readonly text: string; readonly languageCode?: string | undefined }): Adaptation | undefined => {
  const language = detectLanguage(message.text) ?? (known.language === undefined ? message.languageCode?.slice(0, 2).toLowerCase() : undefined)
  const formality = detectFormality(message.text)
  const length = detectLength(message.text)
  const change: { language?: string; formality?: Formality; length?: ReplyLength } = {}
  if (language !== undefined && /^[a-z]{2}$/.test(language) && language !== known.language) change.language = language
  if (formality !== undefined && formality !== known.formality) change.formality = formality
  // a middling message says little: it sets the length only while none is known (no flapping)
  if (length !== undefined && length !== known.length && (length !== "medium" || known.length === undefined)) change.length = length
  return Object.keys(change).length > 0 ? change : undefined
}

/** The adaptation after a recorded change (the fold of PersonalityAdapted). */
export const adapt = (known: Adaptation, change: Adaptation): Adaptation => ({ ...known, ...change })
