import { parseAiConfig } from "../../ai/aiConfig.pure.js"
import type { AiConfig } from "../../ai/aiConfig.pure.js"
import { applyPersona, parsePersona, signs } from "./persona.pure.js"
import type { Adaptation, Persona, Tone } from "./persona.pure.js"

/**
 * The built-in kind's configuration and its personality, pure so it is unit-tested alone and the
 * same texts come out on replay. The personality is a persona (persona.pure.ts): the four tones
 * are its presets.
 */

export type { Tone }

/** The persona a bot speaks as (name and tone at least; the rest from the tone's preset). */
export type Personality = Pick<Persona, "name" | "tone"> & Partial<Persona>

export interface BuiltinConfig {
  readonly greeting: string
  readonly help: string
  readonly commands: Readonly<Record<string, { readonly reply: string; readonly description?: string }>>
  readonly keywords: ReadonlyArray<{ readonly match: string; readonly reply: string }>
  readonly fallback: string | null
  readonly personality: Persona
  /**
   * Learn each user's language, formality and preferred length (PersonalityAdapted): by default
   * for bots with an `ai` section (the model is told), `personality.adapt` true/false decides.
   */
  readonly adapt: boolean
  /** Answers other texts with a model (null: the fallback text). */
  readonly ai: AiConfig | null
}
const COMMAND = /^[a-z0-9_]{1,32}$/

const str = (v: unknown, fallback: string): string => (typeof v === "string" ? v : fallback)

/**
 * Reads an owner's configuration leniently: what is missing or malformed falls back to a default
 * rather than breaking the bot (the API validates on write; this guards old or hand-made configs).
 */
export const parseBuiltinConfig = (raw: unknown): BuiltinConfig => {
  const c = (typeof raw === "object" && raw !== null ? raw : {}) as Record<string, unknown>
  const commands: Record<string, { reply: string; description?: string }> = {}
  if (typeof c["commands"] === "object" && c["commands"] !== null) {
    for (const [name, v] of Object.entries(c["commands"] as Record<string, unknown>)) {
      const key = name.replace(/^\//, "").toLowerCase()
      if (!COMMAND.test(key) || key === "start" || key === "help") continue
      if (typeof v === "string") commands[key] = { reply: v }
      else if (typeof v === "object" && v !== null && typeof (v as { reply?: unknown }).reply === "string") {
        const d = (v as { description?: unknown }).description
        commands[key] = { reply: (v as { reply: string }).reply, ...(typeof d === "string" ? { description: d } : {}) }
      }
    }
  }
  const keywords = Array.isArray(c["keywords"])
    ? (c["keywords"] as unknown[]).flatMap((k) => {
        const o = k as { match?: unknown; reply?: unknown } | null
        return typeof o?.match === "string" && o.match.length > 0 && typeof o.reply === "string" ? [{ match: o.match, reply: o.reply }] : []
      })
    : []
  const p = (typeof c["personality"] === "object" && c["personality"] !== null ? c["personality"] : {}) as Record<string, unknown>
  return {
    greeting: str(c["greeting"], "Hello, {name}!"),
    help: str(c["help"], "Here is what I can do:"),
    commands,
    keywords,
    fallback: typeof c["fallback"] === "string" ? c["fallback"] : null,
    personality: parsePersona(p),
    adapt: typeof p["adapt"] === "boolean" ? p["adapt"] : parseAiConfig(c["ai"]) !== null,
    ai: parseAiConfig(c["ai"])
  }
}

/**
 * Applies the persona to a text (vocabulary, the tone's opener, emoji, the formal signature),
 * adapted to the user when something was learned about them. A `{name, tone}` pair is completed
 * from the tone's preset.
 */
export const applyPersonality = (p: Personality, text: string, adaptation: Adaptation = {}): string =>
  applyPersona(parsePersona(p), text, adaptation)

const WELCOME_BACK: Readonly<Record<string, string>> = {
  en: "Welcome back, {name}!",
  de: "Willkommen zurück, {name}!",
  fr: "Bon retour, {name} !",
  es: "¡Bienvenido de nuevo, {name}!",
  ru: "С возвращением, {name}!"
}

/** The /start text: the owner's greeting for a new user, a welcome back (in their language) for a known one. */
export const greetingFor = (
  config: BuiltinConfig,
  user: { readonly firstName: string; readonly languageCode?: string | undefined; readonly returning: boolean }
): string => {
  const lang = (user.languageCode ?? "en").slice(0, 2)
  const template = user.returning ? (WELCOME_BACK[lang] ?? WELCOME_BACK["en"]!) : config.greeting
  // the bot names itself once: not when its greeting already does, nor when it signs its replies
  const name = config.personality.name
  const named = name !== null && (template.includes("{bot}") || template.includes(name) || signs(config.personality))
  const intro = !user.returning && name && !named ? ` I am ${name}.` : ""
  return template.replaceAll("{name}", user.firstName || "there").replaceAll("{bot}", config.personality.name ?? "") + intro
}
