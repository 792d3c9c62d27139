import OpenAI from "openai"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { startAiStub } from "../../src/ai/stubServer.js"
import type { AiStub } from "../../src/ai/stubServer.js"

let stub: AiStub
beforeAll(async () => {
  stub = await startAiStub()
})
afterAll(async () => {
  await stub.close()
})

const client = () => new OpenAI({ apiKey: "none", baseURL: stub.baseURL, maxRetries: 0, timeout: 2_000 })
const ask = (text: string) => client().chat.completions.create({ model: "botfleet-stub", messages: [{ role: "system", content: "You are Sunny, cheerful." }, { role: "user", content: text }] })

describe("the offline OpenAI-compatible stub", () => {
  it("answers the openai client deterministically, with usage", async () => {
    const a = await ask("what is the weather?")
    const b = await ask("what is the weather?")
    expect(a.choices[0]!.message.content).toBe(b.choices[0]!.message.content)
    expect(a.choices[0]!.message.content).toContain('You said: "what is the weather?"')
    expect(a.choices[0]!.message.content).toContain("(Sunny)")
    expect(a.usage!.total_tokens).toBe(a.usage!.prompt_tokens + a.usage!.completion_tokens)
    const models = await client().models.list()
    expect(models.data.map((m) => m.id)).toContain("botfleet-stub")
  })

  it("fails as scripted: an HTTP error, then a hang the client times out on, then answers again", async () => {
    stub.fail({ status: 503, message: "overloaded" }, { hang: true })
    await expect(ask("one")).rejects.toMatchObject({ status: 503 })
    const slow = new OpenAI({ apiKey: "none", baseURL: stub.baseURL, maxRetries: 0, timeout: 200 })
    await expect(slow.chat.completions.create({ model: "m", messages: [{ role: "user", content: "two" }] })).rejects.toThrow(/timed out/i)
    await expect(ask("three")).resolves.toMatchObject({ object: "chat.completion" })
  })

  it("is scripted over HTTP too and refuses malformed requests with a clear error", async () => {
    const base = stub.baseURL.replace(/\/v1$/, "")
    expect((await fetch(`${base}/stub/faults`, { method: "POST", body: JSON.stringify({ status: 42 }) })).status).toBe(400)
    expect((await fetch(`${base}/stub/faults`, { method: "POST", body: JSON.stringify([{ status: 429 }]) })).status).toBe(200)
    await expect(ask("x")).rejects.toMatchObject({ status: 429 })
    const bad = await fetch(`${stub.baseURL}/chat/completions`, { method: "POST", body: JSON.stringify({ model: "m", messages: [] }) })
    expect(bad.status).toBe(400)
    expect(((await bad.json()) as { error: { message: string } }).error.message).toMatch(/messages/)
    const stats = (await (await fetch(`${base}/stub/stats`)).json()) as { requests: number }
    expect(stats.requests).toBe(stub.requests)
  })
})
