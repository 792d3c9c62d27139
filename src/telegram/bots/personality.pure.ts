/**
 * The built-in kind's configuration and its personality, pure so it is unit-tested alone and the
 * same texts come out on replay.
 */

export type Tone = "plain" | "friendly" | "formal" | "pirate"

export interface Personality {
  readonly name: string | null
  readonly tone: Tone
}

export interface BuiltinConfig {
  readonly greeting: string
  readonly help: string
  readonly commands: Readonly<Record<string, { readonly reply: string; readonly description?: string }>>
  readonly keywords: ReadonlyArray<{ readonly match: string; readonly reply: string }>
  readonly fallback: string | null
  readonly personality: Personality
}

const TONES: ReadonlyArray<Tone> = ["plain", "friendly", "formal", "pirate"]
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
  const tone = TONES.includes(p["tone"] as Tone) ? (p["tone"] as Tone) : "plain"
  return {
    greeting: str(c["greeting"], "Hello, {name}!"),
    help: str(c["help"], "Here is what I can do:"),
    commands,
    keywords,
    fallback: typeof c["fallback"] === "string" ? c["fallback"] : null,
    personality: { name: typeof p["name"] === "string" ? p["name"] : null, tone }
  }
}

/** Applies the tone to a text; the name signs formal texts and introduces friendly greetings. */
export const applyPersonality = (p: Personality, text: string): string => {
  switch (p.tone) {
    case "plain":
      return text
    case "friendly":
      return `${text} 😊`
    case "formal":
      return p.name ? `${text}\n\n— ${p.name}` : text
    case "pirate":
      return `Arr! ${text.replace(/\byou\b/gi, "ye").replace(/\bmy\b/gi, "me")}`
    default: {
      const never: never = p.tone
      return never
    }
  }
}

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
  const intro = !user.returning && config.personality.name ? ` I am ${config.personality.name}.` : ""
  return template.replaceAll("{name}", user.firstName || "there").replaceAll("{bot}", config.personality.name ?? "") + intro
}
