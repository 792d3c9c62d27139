import { Option } from "effect"
import { describe, expect, it } from "vitest"
import { DEMO_BOTS, demoBotNamed } from "../../src/runtime/demoFleet.js"
import type { RunningNode } from "../../src/runtime/node.js"
import { bannerFor } from "../../src/runtime/serve.js"

/* The demo bots' one name: what the banner shows, and which names find a demo bot. */

describe("the demo bots' names", () => {
  it("find a demo bot by its id or its username, with or without the @, in any case", () => {
    for (const name of ["demo-sunny", "@sunny_demo_bot", "sunny_demo_bot", "@SUNNY_demo_bot", " Demo-Sunny "]) expect(demoBotNamed(name)?.botId, name).toBe("demo-sunny")
    // an @ names a username only; and names of no demo bot find nothing
    for (const name of ["@demo-sunny", "sunny", "demo", "", "@"]) expect(demoBotNamed(name), name).toBeUndefined()
  })

  it("show in the banner as the id with the @username, and the curl lines use the id the CLI uses", () => {
    const node = {
      config: { mode: "embedded", dataDir: "/data", aiBaseUrl: Option.none() },
      ingressUrl: "http://127.0.0.1:8080",
      sandbox: { apiRoot: "http://127.0.0.1:8081" },
      aiBaseUrl: null,
      demoBots: DEMO_BOTS.map((b) => ({ botId: b.botId, username: b.username }))
    } as unknown as RunningNode
    const banner = bannerFor(node).join("\n")
    expect(banner).toContain("Demo bots: demo-sunny (@sunny_demo_bot), demo-barnacle (@barnacle_demo_bot), demo-clerk (@clerk_demo_bot), demo-sage (@sage_demo_bot)")
    expect(banner).toContain("botfleet tail demo-sunny or botfleet tail @sunny_demo_bot")
    expect(banner).toContain("http://127.0.0.1:8081/sandbox/demo-sunny/say")
  })
})
