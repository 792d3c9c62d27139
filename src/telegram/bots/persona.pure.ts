/**
 * Personas: who a bot is when it speaks (name, tone, vocabulary, emoji use, formality, language),
 * applied to every reply it sends, templated or written by a model, and turned into the model's
 * system prompt. Pure: the same persona and text give the same reply on every run and on replay.
 * The four built-in tones are presets an owner's fields override.
 */

export type Tone = "plain" | "friendly" | "formal" | "pirate"
export type EmojiUse = "none" | "some" | "lots"
export type Formality = "casual" | "neutral" | "formal"
export type ReplyLength = "short" | "medium" | "long"

export const TONES: ReadonlyArray<Tone> = ["plain", "friendly", "formal", "pirate"]
export const EMOJI_USES: ReadonlyArray<EmojiUse> = ["none", "some", "lots"]
export const FORMALITIES: ReadonlyArray<Formality> = ["casual", "neutral", "formal"]
export const REPLY_LENGTHS: ReadonlyArray<ReplyLength> = ["short", "medium", "long"]

export interface Persona {
  readonly name: string | null
  readonly tone: Tone
  /** Whole words replaced in every reply (case kept: "You" → "Ye"), e.g. the pirate's you → ye. */
  readonly vocabulary: Readonly<Record<string, string>>
  readonly emoji: EmojiUse
  readonly formality: Formality
  /** The language the bot speaks unless a user's own is known (ISO 639-1), null: the user's or English. */
  readonly language: string | null
  /** The owner's own words about the persona, added to the model's system prompt. */
  readonly description: string | null
}

/** What the bot learned about one user (PersonalityAdapted events): overrides the persona for them. */
export interface Adaptation {
  readonly language?: string | undefined
  readonly formality?: Formality | undefined
  readonly length?: ReplyLength | undefined
}

/** The built-in tones as personas. */
export const PRESETS: Readonly<Record<Tone, Omit<Persona, "name" | "description" | "language">>> = {
  plain: { tone: "plain", vocabulary: {}, emoji: "none", formality: "neutral" },
  friendly: { tone: "friendly", vocabulary: {}, emoji: "some", formality: "casual" },
  formal: { tone: "formal", vocabulary: {}, emoji: "none", formality: "formal" },
  pirate: { tone: "pirate", vocabulary: { you: "ye", your: "yer", my: "me", hello: "ahoy", friend: "matey", yes: "aye" }, emoji: "none", formality: "casual" }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v)
const pick = <A extends string>(v: unknown, all: ReadonlyArray<A>): A | undefined => (all.includes(v as A) ? (v as A) : undefined)

/**
 * A persona from an owner's `personality` config, leniently (the schema checks on write; this
 * guards old or hand-made configs): the tone's preset, then the owner's fields over it.
 */
export const parsePersona = (raw: unknown): Persona => {
  const p = isObject(raw) ? raw : {}
  const tone = pick(p["tone"], TONES) ?? "plain"
  const preset = PRESETS[tone]
  const vocabulary: Record<string, string> = { ...preset.vocabulary }
  if (isObject(p["vocabulary"])) {
    for (const [k, v] of Object.entries(p["vocabulary"])) if (/^[\p{L}\p{N}' -]{1,40}$/u.test(k) && typeof v === "string") vocabulary[k.toLowerCase()] = v
  }
  return {
    name: typeof p["name"] === "string" ? p["name"] : null,
    tone,
    vocabulary,
    emoji: pick(p["emoji"], EMOJI_USES) ?? preset.emoji,
    formality: pick(p["formality"], FORMALITIES) ?? preset.formality,
    language: typeof p["language"] === "string" && /^[a-z]{2}$/.test(p["language"]) ? p["language"] : null,
    description: typeof p["description"] === "string" ? p["description"] : null
  }
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")

/** The replacement in the case of the word it replaces: "You" → "Ye", "YOU" → "YE", "you" → "ye". */
const inCaseOf = (word: string, replacement: string): string => {
  if (word.length > 1 && word === word.toUpperCase() && word !== word.toLowerCase()) return replacement.toUpperCase()
  if (word[0] !== undefined && word[0] === word[0].toUpperCase() && word[0] !== word[0].toLowerCase()) return replacement.charAt(0).toUpperCase() + replacement.slice(1)
  return replacement
}

/** Replaces whole words of the vocabulary, keeping each word's case (a sentence start stays capitalised). */
export const applyVocabulary = (vocabulary: Readonly<Record<string, string>>, text: string): string => {
  const words = Object.keys(vocabulary).sort((a, b) => b.length - a.length)
  if (words.length === 0) return text
  const re = new RegExp(`(?<![\\p{L}\\p{N}])(${words.map(escape).join("|")})(?![\\p{L}\\p{N}])`, "giu")
  return text.replace(re, (w: string) => inCaseOf(w, vocabulary[w.toLowerCase()] ?? w))
}

const EMOJI = /\p{Extended_Pictographic}/u

/** The emoji a persona ends a reply with, by tone; none when the text already has one. */
const emojiFor = (p: Persona, use: EmojiUse, text: string): string => {
  if (use === "none" || EMOJI.test(text)) return ""
  const one = p.tone === "pirate" ? "🏴‍☠️" : p.tone === "formal" ? "🙂" : "😊"
  return use === "lots" ? ` ${one}✨` : ` ${one}`
}

/** Whether the persona signs its replies with its name (the formal tone does). */
export const signs = (p: Persona): boolean => p.tone === "formal" && p.name !== null

/**
 * A reply as the persona says it to a user: vocabulary, the tone's opener (pirate), emoji (none for
 * a user who writes formally), the signature (formal). Never changes what the text says otherwise.
 */
export const applyPersona = (p: Persona, text: string, adaptation: Adaptation = {}): string => {
  let out = applyVocabulary(p.vocabulary, text)
  if (p.tone === "pirate" && !/^arr\b/i.test(out)) out = `Arr! ${out}`
  // a user who writes formally gets no emoji, whatever the persona's habit
  const use: EmojiUse = adaptation.formality === "formal" || p.formality === "formal" ? "none" : p.emoji
  out += emojiFor(p, use, out)
  if (signs(p)) out = `${out}\n\n— ${p.name}`
  return out
}

const LANGUAGE_NAMES: Readonly<Record<string, string>> = { en: "English", de: "German", fr: "French", es: "Spanish", ru: "Russian", it: "Italian", pt: "Portuguese", nl: "Dutch", uk: "Ukrainian" }

export const languageName = (code: string): string => LANGUAGE_NAMES[code] ?? code

const LENGTH_HINT: Readonly<Record<ReplyLength, string>> = {
  short: "Keep answers to one or two short sentences.",
  medium: "Keep answers to a short paragraph.",
  long: "Answer in detail when the question needs it."
}

/** Most completion tokens a reply may take, by the length a user prefers. */
export const maxTokensFor = (length: ReplyLength | undefined, configured: number): number =>
  length === "short" ? Math.min(configured, 120) : length === "long" ? configured : Math.min(configured, 300)

/**
 * The model's system prompt: the persona (name, tone, formality, emoji, vocabulary), what was
 * learned about this user (language, formality, length), and the owner's own instructions.
 */
export const systemPrompt = (p: Persona, adaptation: Adaptation, ownerPrompt: string | null): string => {
  const lines: string[] = []
  lines.push(`You are ${p.name ?? "a helpful assistant"}, a Telegram bot.`)
  if (p.description) lines.push(p.description)
  const tone = { plain: "Speak plainly.", friendly: "Be warm and friendly.", formal: "Be courteous and formal.", pirate: "Talk like a pirate." }[p.tone]
  lines.push(tone)
  const formality = adaptation.formality ?? p.formality
  if (formality !== "neutral") lines.push(formality === "formal" ? "Address the user formally." : "Address the user casually.")
  lines.push(p.emoji === "none" ? "Do not use emoji." : p.emoji === "lots" ? "Use emoji freely." : "Use an emoji now and then.")
  // a learned language that is no code (`[erased]`: the user was forgotten) is not one to answer in
  const learned = adaptation.language !== undefined && /^[a-z]{2}$/.test(adaptation.language) ? adaptation.language : undefined
  const language = learned ?? p.language
  if (language) lines.push(`Answer in ${languageName(language)}.`)
  lines.push(LENGTH_HINT[adaptation.length ?? "medium"])
  if (ownerPrompt) lines.push(ownerPrompt)
  return lines.join(" ")
}
