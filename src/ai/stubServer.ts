import { createServer } from "node:http"
import type { IncomingMessage, ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"
import { approxTokens, stubReply } from "./stubReplies.pure.js"
import type { StubMessage } from "./stubReplies.pure.js"

/**
 * An offline OpenAI-compatible server (`POST /v1/chat/completions`, `GET /v1/models`) for tests,
 * the sandbox and the demo fleet: deterministic replies (stubReplies.pure.ts), configurable latency
 * and scripted failures, no key and no network. Not a model: it says what it was asked.
 *
 * Control, from code or over HTTP (so a sandbox user can script an outage):
 * - `POST /stub/latency {ms}`: every completion waits this long first;
 * - `POST /stub/faults [{status, message?} | {hang: true}]`: the next completions fail in that
 *   order (`status` answers an OpenAI-style error; `hang` never answers, for timeouts);
 * - `GET /stub/stats`: completions answered and requests received.
 */

export type StubFault = { readonly status: number; readonly message?: string } | { readonly hang: true }

export interface AiStubOptions {
  readonly port?: number
  readonly host?: string
  /** Every completion waits this long first (default 0). */
  readonly latencyMs?: number
  /** The model names `GET /v1/models` lists; any name is accepted in a completion. */
  readonly models?: ReadonlyArray<string>
}

export interface AiStub {
  /** The `baseURL` to give the openai client, e.g. `http://127.0.0.1:8090/v1`. */
  readonly baseURL: string
  setLatency(ms: number): void
  /** The next completions fail in this order. */
  fail(...faults: ReadonlyArray<StubFault>): void
  /** Completion requests received (answered, failed or hanging). */
  readonly requests: number
  /** The request bodies received, oldest first (at most the last 100). */
  readonly received: ReadonlyArray<{ readonly model: string; readonly messages: ReadonlyArray<StubMessage>; readonly max_tokens?: number }>
  readonly close: () => Promise<void>
}

const MAX_BODY = 1024 * 1024

const readBody = (req: IncomingMessage): Promise<string> =>
  new Promise((resolve, reject) => {
    let size = 0
    const chunks: Buffer[] = []
    req.on("data", (c: Buffer) => {
      size += c.length
      if (size > MAX_BODY) {
        reject(new Error("body too large"))
        req.destroy()
      } else chunks.push(c)
    })
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")))
    req.on("error", reject)
  })

const send = (res: ServerResponse, status: number, body: unknown) => {
  res.writeHead(status, { "content-type": "application/json" })
  res.end(JSON.stringify(body))
}

const error = (res: ServerResponse, status: number, message: string, type = "invalid_request_error") =>
  send(res, status, { error: { message, type, param: null, code: null } })

const isMessages = (v: unknown): v is StubMessage[] =>
  Array.isArray(v) && v.length > 0 && v.every((m) => typeof m === "object" && m !== null && typeof (m as StubMessage).role === "string" && typeof (m as StubMessage).content === "string")

export const startAiStub = async (o: AiStubOptions = {}): Promise<AiStub> => {
  let latencyMs = o.latencyMs ?? 0
  let requests = 0
  let created = 1_700_000_000
  const faults: StubFault[] = []
  const received: Array<AiStub["received"][number]> = []
  const hanging = new Set<ServerResponse>()
  const models = o.models ?? ["botfleet-stub"]

  const completion = async (req: IncomingMessage, res: ServerResponse) => {
    let body: Record<string, unknown>
    try {
      body = JSON.parse(await readBody(req)) as Record<string, unknown>
    } catch {
      return error(res, 400, "the body is not JSON")
    }
    if (typeof body["model"] !== "string" || body["model"].length === 0) return error(res, 400, "model is required")
    if (!isMessages(body["messages"])) return error(res, 400, "messages must be a non-empty array of {role, content} with text content")
    if (body["stream"] === true) return error(res, 400, "the stub does not stream")
    const maxTokens = typeof body["max_tokens"] === "number" ? body["max_tokens"] : typeof body["max_completion_tokens"] === "number" ? body["max_completion_tokens"] : undefined
    requests++
    received.push({ model: body["model"], messages: body["messages"], ...(maxTokens !== undefined ? { max_tokens: maxTokens } : {}) })
    if (received.length > 100) received.shift()
    const fault = faults.shift()
    if (fault && "hang" in fault) {
      hanging.add(res)
      res.on("close", () => hanging.delete(res))
      return
    }
    if (latencyMs > 0) await new Promise((r) => setTimeout(r, latencyMs))
    if (fault) return error(res, fault.status, fault.message ?? `stub fault ${fault.status}`, fault.status >= 500 ? "server_error" : "invalid_request_error")
    const messages = body["messages"]
    const reply = stubReply(messages, maxTokens)
    const prompt = messages.reduce((n, m) => n + approxTokens(m.content), 0)
    const completionTokens = approxTokens(reply.text)
    send(res, 200, {
      id: `chatcmpl-stub-${requests}`,
      object: "chat.completion",
      created: created++,
      model: body["model"],
      choices: [{ index: 0, message: { role: "assistant", content: reply.text }, finish_reason: reply.finish, logprobs: null }],
      usage: { prompt_tokens: prompt, completion_tokens: completionTokens, total_tokens: prompt + completionTokens }
    })
  }

  const control = async (req: IncomingMessage, res: ServerResponse, path: string) => {
    let body: unknown
    try {
      body = JSON.parse((await readBody(req)) || "null")
    } catch {
      return error(res, 400, "the body is not JSON")
    }
    if (path === "/stub/latency") {
      const ms = (body as { ms?: unknown } | null)?.ms
      if (typeof ms !== "number" || !Number.isFinite(ms) || ms < 0 || ms > 600_000) return error(res, 400, "ms must be a number of milliseconds from 0 to 600000")
      latencyMs = ms
      return send(res, 200, { latencyMs })
    }
    const list = Array.isArray(body) ? body : [body]
    const ok = list.every(
      (f) => typeof f === "object" && f !== null && ((f as { hang?: unknown }).hang === true || (typeof (f as { status?: unknown }).status === "number" && (f as { status: number }).status >= 400 && (f as { status: number }).status < 600))
    )
    if (!ok) return error(res, 400, "faults are {status: 400-599, message?} or {hang: true}")
    faults.push(...(list as StubFault[]))
    return send(res, 200, { queued: faults.length })
  }

  const server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0]!.replace(/\/+$/, "")
    const route = `${req.method} ${path}`
    const handled =
      route === "POST /v1/chat/completions" || route === "POST /chat/completions"
        ? completion(req, res)
        : route === "GET /v1/models" || route === "GET /models"
          ? Promise.resolve(send(res, 200, { object: "list", data: models.map((id) => ({ id, object: "model", created: 0, owned_by: "botfleet" })) }))
          : route === "GET /stub/stats"
            ? Promise.resolve(send(res, 200, { requests, latencyMs, faultsQueued: faults.length }))
            : route === "POST /stub/latency" || route === "POST /stub/faults"
              ? control(req, res, path)
              : Promise.resolve(error(res, 404, `no route ${route}`))
    handled.catch((e: unknown) => {
      if (!res.headersSent) error(res, 500, e instanceof Error ? e.message : String(e), "server_error")
    })
  })
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject)
    server.listen(o.port ?? 0, o.host ?? "127.0.0.1", () => resolve())
  })
  const { port } = server.address() as AddressInfo
  return {
    baseURL: `http://${o.host ?? "127.0.0.1"}:${port}/v1`,
    setLatency: (ms) => void (latencyMs = ms),
    fail: (...f) => void faults.push(...f),
    get requests() {
      return requests
    },
    received,
    close: async () => {
      for (const res of hanging) res.destroy()
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    }
  }
}
