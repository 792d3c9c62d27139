/**
 * What the offline model stub answers, pure: the same request always gets the same reply, so tests,
 * the sandbox and the demo fleet are reproducible with no key and no network.
 */

export interface StubMessage {
  readonly role: string
  readonly content: string
}

/** A rough token count (about four characters a token, as OpenAI's tokenizers average on English). */
export const approxTokens = (text: string): number => Math.max(1, Math.ceil(text.length / 4))

/** FNV-1a, 32 bits: a stable pick among canned phrases. */
const hash = (s: string): number => {
  let h = 0x811c9dc5
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i)
    h = Math.imul(h, 0x01000193) >>> 0
  }
  return h
}

const OPENERS = ["Good question.", "Let me think.", "Interesting.", "I see.", "Right."]

/**
 * The stub's reply: names what it was asked, how many earlier turns it saw and the persona it was
 * told to be (first words of the system prompt), so a test can check what reached the model.
 * `maxTokens` cuts the reply like a real model's length limit.
 */
export const stubReply = (messages: ReadonlyArray<StubMessage>, maxTokens?: number): { readonly text: string; readonly finish: "stop" | "length" } => {
  const users = messages.filter((m) => m.role === "user")
  const last = users[users.length - 1]?.content ?? ""
  const system = messages.find((m) => m.role === "system")?.content ?? ""
  const persona = /You are ([^.,\n]{1,40})/.exec(system)?.[1]
  const opener = OPENERS[hash(`${system}\n${last}`) % OPENERS.length]!
  const turns = users.length - 1
  const text =
    `${opener} You said: "${last.slice(0, 200)}".` +
    (turns > 0 ? ` We have talked ${turns} time${turns === 1 ? "" : "s"} before.` : "") +
    (persona ? ` (${persona})` : "")
  if (maxTokens !== undefined && approxTokens(text) > maxTokens) return { text: text.slice(0, Math.max(1, maxTokens * 4)), finish: "length" }
  return { text, finish: "stop" }
}
