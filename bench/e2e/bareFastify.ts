import Fastify from "fastify"

/*
 * The ingress's ceiling in `bench e2e`: a fastify route that only parses the JSON body and answers
 * 200, in a process of its own (what issue 13 compares the ingress with).
 */
const app = Fastify({ logger: false })
app.post("/telegram/:botId", async (req) => {
  void req.body
  return { ok: true }
})
const url = await app.listen({ port: 0, host: "127.0.0.1" })
process.send!({ op: "listening", url })
process.on("disconnect", () => process.exit(0))
