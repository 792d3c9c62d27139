import { randomBytes, randomInt } from "node:crypto"
import { Effect, Redacted } from "effect"
import type { EventLogService } from "../events/eventLog.js"
import type { TokenVault } from "../telegram/tokenVault.js"
import type { FleetDirectory } from "./fleetDirectory.js"
import { registerBot } from "./registerBot.js"

/** One bot of the demo fleet: its id (stream), its sandbox username and its built-in configuration. */
export interface DemoBot {
  readonly botId: string
  readonly username: string
  readonly config: unknown
}

/**
 * Four bots of the built-in kind with different personalities, to chat with in the sandbox; the
 * fourth answers with a model (the node's offline stub unless AI_BASE_URL names a real server).
 */
export const DEMO_BOTS: ReadonlyArray<DemoBot> = [
  {
    botId: "demo-sunny",
    username: "sunny_demo_bot",
    config: {
      greeting: "Hi {name}! Lovely to meet you.",
      help: "I'm Sunny, the cheerful one. Try:",
      personality: { name: "Sunny", tone: "friendly" },
      commands: { weather: { reply: "Always sunny in here!", description: "today's forecast" } },
      keywords: [
        { match: "hello", reply: "Hello hello! How is your day going?" },
        { match: "thanks", reply: "Any time!" }
      ],
      fallback: "I love that! Tell me more, or try /help."
    }
  },
  {
    botId: "demo-barnacle",
    username: "barnacle_demo_bot",
    config: {
      greeting: "Ahoy {name}, welcome aboard!",
      help: "Captain Barnacle at your service. Orders I know:",
      personality: { name: "Captain Barnacle", tone: "pirate" },
      commands: { treasure: { reply: "You will find my treasure where the X marks the spot.", description: "where the gold is" } },
      keywords: [
        { match: "ship", reply: "My ship is the fastest on the seven seas." },
        { match: "rum", reply: "Why is the rum always gone?" }
      ],
      fallback: "I do not understand you, landlubber. Try /help."
    }
  },
  {
    botId: "demo-clerk",
    username: "clerk_demo_bot",
    config: {
      greeting: "Good day, {name}. How may I assist you?",
      help: "The following services are available:",
      personality: { name: "The Clerk", tone: "formal" },
      commands: {
        hours: { reply: "The office is open from 9:00 to 17:00, Monday to Friday.", description: "opening hours" },
        forms: { reply: "Form A-38 is required for all requests.", description: "the form you need" }
      },
      keywords: [{ match: "complain", reply: "Your complaint has been noted and will be processed in due course." }],
      fallback: "Your message has been received. Please consult /help for the available services."
    }
  },
  {
    botId: "demo-sage",
    username: "sage_demo_bot",
    config: {
      greeting: "Hello {name}, I am Sage. Ask me anything: a model answers (offline here, no key needed).",
      help: "I am Sage, the AI demo: write anything and a model answers, remembering our chat. Also:",
      personality: { name: "Sage", tone: "friendly", description: "A calm, thoughtful guide who answers briefly.", emoji: "some" },
      commands: { about: { reply: "I answer with an OpenAI-compatible model; every call is recorded, so a replay never calls it again.", description: "how I work" } },
      ai: {
        model: "botfleet-stub",
        memoryTurns: 6,
        maxReplyTokens: 300,
        timeoutMs: 10_000,
        dailyTokens: { bot: 200_000, user: 20_000 },
        fallback: "My thoughts are elsewhere for a moment. Please ask again shortly."
      }
    }
  }
]

/**
 * The demo bot a name means: its id (`demo-sunny`) or its username, with or without the @
 * (`@sunny_demo_bot`, `sunny_demo_bot`), in any case. Lets every command find a demo bot by the
 * name the banner and the chat page show, even before a projection has its row.
 */
export const demoBotNamed = (name: string): DemoBot | undefined => {
  const key = name.trim().toLowerCase()
  const username = key.replace(/^@/, "")
  return DEMO_BOTS.find((b) => (!key.startsWith("@") && b.botId === key) || b.username === username)
}

/** A sandbox token: Telegram's shape (`<digits>:<35 chars>`), random, only ever stored encrypted. */
const newSandboxToken = () => Redacted.make(`${randomInt(1_000_000_000, 2_000_000_000)}:${randomBytes(26).toString("base64url")}`)

/**
 * Registers the demo bots, once: a bot whose stream already has events is left as it is (its
 * state, config changes and token survive restarts), so seeding is idempotent across restarts and
 * across nodes starting together (see registerBot). Returns the bots that were registered now.
 */
export const seedDemoFleet = (o: {
  readonly log: EventLogService
  readonly vault: TokenVault
  readonly directory: FleetDirectory
  readonly nodeId: string
  readonly bots?: ReadonlyArray<DemoBot>
}) =>
  Effect.gen(function* () {
    const registered: string[] = []
    for (const bot of o.bots ?? DEMO_BOTS) {
      const now = yield* registerBot({
        ...o,
        bot: { botId: bot.botId, ownerId: "demo", name: bot.username, kind: "builtin", mode: "sandbox", token: newSandboxToken(), config: bot.config }
      })
      if (now) registered.push(bot.botId)
    }
    return registered
  })
