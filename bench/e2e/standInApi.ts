import { createServer } from "node:http"
import type { ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"

/*
 * The stand-in Bot API of `bench e2e`, in a process of its own: answers getMe, setWebhook and
 * sendMessage (anything else: `true`) as fast as a bare node:http server can, and records when
 * each sendMessage arrived, per `<bot id>:<chat id>`. The bot id comes from the token
 * (`<id>:<secret>`), as Telegram's does. The parent talks to it over IPC:
 * `{ op: "reset" }`, `{ op: "count" }` → total replies, `{ op: "collect" }` → every arrival.
 */

const now = () => performance.timeOrigin + performance.now()
let arrivals = new Map<string, number[]>()
let total = 0
const webhooks = new Set<string>()
let messageId = 0

const send = (res: ServerResponse, result: unknown) => {
  const body = JSON.stringify({ ok: true, result })
  res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) })
  res.end(body)
}

const server = createServer((req, res) => {
  const m = /^\/bot(\d+):[^/]+\/(\w+)/.exec(req.url ?? "")
  if (!m) {
    res.writeHead(404).end(JSON.stringify({ ok: false, error_code: 404, description: "Not Found" }))
    return
  }
  const botId = Number(m[1])
  const method = m[2]!
  const chunks: Buffer[] = []
  req.on("data", (c: Buffer) => chunks.push(c))
  req.on("end", () => {
    const raw = Buffer.concat(chunks).toString("utf8")
    let params: Record<string, unknown> = {}
    if (raw.length > 0) {
      try {
        params = (req.headers["content-type"] ?? "").includes("json") ? (JSON.parse(raw) as Record<string, unknown>) : Object.fromEntries(new URLSearchParams(raw))
      } catch {
        params = {}
      }
    }
    switch (method) {
      case "getMe":
        return send(res, { id: botId, is_bot: true, first_name: `b${botId}`, username: `b${botId}_bot`, can_join_groups: true, can_read_all_group_messages: false, supports_inline_queries: false })
      case "setWebhook":
        webhooks.add(String(botId))
        return send(res, true)
      case "sendMessage": {
        const chatId = Number(params["chat_id"])
        const key = `${botId}:${chatId}`
        const list = arrivals.get(key)
        if (list) list.push(now())
        else arrivals.set(key, [now()])
        total++
        return send(res, { message_id: ++messageId, date: Math.floor(Date.now() / 1000), chat: { id: chatId, type: "private" }, text: String(params["text"] ?? "") })
      }
      default:
        return send(res, true)
    }
  })
})
server.keepAliveTimeout = 60_000

server.listen(0, "127.0.0.1", () => {
  process.send!({ op: "listening", apiRoot: `http://127.0.0.1:${(server.address() as AddressInfo).port}` })
})

process.on("message", (msg: { op: string; id: number }) => {
  switch (msg.op) {
    case "reset":
      arrivals = new Map()
      total = 0
      return process.send!({ id: msg.id, ok: true })
    case "count":
      return process.send!({ id: msg.id, total, webhooks: webhooks.size })
    case "collect":
      return process.send!({ id: msg.id, arrivals: [...arrivals] })
  }
})
process.on("disconnect", () => process.exit(0))
