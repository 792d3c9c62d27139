import { mkdir, mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import Fastify from "fastify"
import type { FastifyInstance } from "fastify"
import { chromium } from "playwright-core"
import type { Browser, Page } from "playwright-core"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { makeAuthenticator } from "../../src/api/auth/apiTokens.js"
import { dashboardRoutes } from "../../src/api/dashboard/dashboardRoutes.js"
import { makeBotWrites } from "../../src/api/rest/botWrites.js"
import { restApi } from "../../src/api/rest/restApi.js"
import { makeMemoryInbox } from "../../src/actors/memoryInbox.js"
import { retryOnPostgres } from "../../src/cli/commands/dlqRetry.js"
import { startSandbox } from "../../src/telegram/sandbox/server.js"
import type { Sandbox } from "../../src/telegram/sandbox/server.js"
import { makePostgresEventLog } from "../../src/events/postgresEventLog.js"
import { useMigratedDatabase } from "../support/db.js"
import { chatFacts, makeTokens, project, seedBot, testConfig } from "./restSupport.js"

/*
 * The dashboard in a real headless Chromium (Debian's /usr/bin/chromium, driven by
 * playwright-core): an owner logs in and sees the numbers the API returns, drawn in charts that
 * are not empty; an admin sees the partitions and retries a dead letter. Screenshots at 1280 and
 * 390 px wide go to .artifacts/ (CI keeps them). The sandbox's chat page is checked in the same
 * browser: a long unbroken word and a phone-wide window.
 */

/** The page's document, as the functions run in the browser see it (this project compiles without the DOM library). */
interface BrowserElement {
  readonly textContent: string | null
  getBoundingClientRect(): { readonly left: number; readonly top: number; readonly right: number; readonly bottom: number; readonly width: number }
}
declare const document: {
  querySelector(selector: string): BrowserElement | null
  getElementById(id: string): BrowserElement | null
  readonly documentElement: { readonly scrollWidth: number }
}

const CHROMIUM = "/usr/bin/chromium"
const SHOTS = join(process.cwd(), ".artifacts")
const sqlOf = useMigratedDatabase("dashboard")
let app: FastifyInstance
let base: string
let browser: Browser
let tokens: Awaited<ReturnType<typeof makeTokens>>
let dataDir: string
let sandbox: Sandbox

beforeAll(async () => {
  const sql = sqlOf()
  dataDir = await mkdtemp(join(tmpdir(), "bf-dashboard-"))
  const log = makePostgresEventLog({ sql, partitions: 2 })
  await seedBot(log, "alice-bot", chatFacts("alice", "a", 100))
  // an entry no schema accepts: the projectors dead-letter it
  await log.injectRaw(0, { junk: "not an event" } as never)
  await project(log, sql, 2)
  tokens = await makeTokens(sql)
  const config = await testConfig(dataDir, 2)
  app = Fastify()
  await app.register(
    restApi({
      sql, log, inbox: makeMemoryInbox(), writes: makeBotWrites({ config, log, sql, node: () => null }), partitions: 2,
      retryDeadLetter: (d) => retryOnPostgres(sql, d), anchorKey: new Uint8Array(32), nodeId: "test-node", rateLimitPerMinute: 0,
      authenticate: makeAuthenticator(sql)
    })
  )
  await app.register(dashboardRoutes)
  base = await app.listen({ host: "127.0.0.1", port: 0 })
  sandbox = await startSandbox({ limits: false })
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox", "--disable-gpu"] })
  await mkdir(SHOTS, { recursive: true })
}, 120_000)
afterAll(async () => {
  await browser?.close()
  await app?.close()
  await sandbox?.close()
  await rm(dataDir, { recursive: true, force: true })
})

const logIn = async (page: Page, token: string) => {
  await page.goto(`${base}/dashboard`)
  await page.fill("#token", token)
  await page.click("#loginForm button")
}

/** What a chart draws: the sum of its datasets' values (0: empty). */
const drawn = (page: Page, id: string) =>
  page.evaluate((canvasId) => {
    const chart = (globalThis as unknown as { Chart: { getChart: (c: unknown) => { data: { datasets: Array<{ data: Array<number> }> } } | undefined } }).Chart.getChart(document.getElementById(canvasId))
    return chart ? chart.data.datasets.flatMap((d) => d.data).reduce((a, b) => a + b, 0) : -1
  }, id)

describe("the dashboard", () => {
  it("shows an owner's bot with the API's numbers in non-empty charts, at 1280 and 390 px", async () => {
    const analytics = await app.inject({ url: "/api/v1/bots/alice-bot/analytics?from=2026-11-01&to=2026-11-30", headers: { authorization: `Bearer ${tokens.aliceRead}` } })
    const expected = JSON.parse(analytics.body) as { days: Array<{ messagesIn: number; messagesOut: number; newUsers: number; returningUsers: number }> }
    for (const width of [1280, 390]) {
      const page = await browser.newPage({ viewport: { width, height: 900 } })
      const errors: Array<string> = []
      page.on("pageerror", (e) => errors.push(e.message))
      page.on("console", (m) => void (m.type() === "error" && errors.push(m.text())))
      await logIn(page, tokens.aliceRead)
      await page.waitForSelector("tr.bot.selected")
      // the bot under the one name the banner, the chat page and the CLI show
      expect(await page.textContent("tr.bot.selected")).toContain("alice-bot (@a_fixture_bot)")
      await page.fill("#from", "2026-11-01")
      await page.fill("#to", "2026-11-30")
      await page.dispatchEvent("#to", "change")
      await page.waitForFunction(() => document.querySelector('[data-number="Messages in"] b')?.textContent === "3")
      expect(await page.textContent('[data-number="Messages out"] b')).toBe(String(expected.days.reduce((s, d) => s + d.messagesOut, 0)))
      expect(await page.textContent('[data-number="Reply p50 ms"] b')).toBe("2000")
      expect(await drawn(page, "messagesChart")).toBe(expected.days.reduce((s, d) => s + d.messagesIn + d.messagesOut, 0))
      expect(await drawn(page, "usersChart")).toBe(expected.days.reduce((s, d) => s + d.newUsers + d.returningUsers, 0))
      expect(await drawn(page, "weeklyChart")).toBeGreaterThan(0)
      expect(await page.locator("#chats tbody tr").count()).toBe(2)
      expect(await page.textContent("#botTitle")).toBe("alice-bot (@a_fixture_bot)")
      // readable: nothing wider than the window
      expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(width)
      await page.screenshot({ path: join(SHOTS, `dashboard-owner-${width}.png`), fullPage: true })
      expect(errors).toEqual([])
      await page.close()
    }
  }, 120_000)

  it("refuses a wrong token, and shows an admin the partitions and a dead letter to retry", async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } })
    await logIn(page, "bft_0000000000000000_" + "A".repeat(43))
    await page.waitForFunction(() => document.getElementById("loginError")?.textContent !== "")
    expect(await page.textContent("#loginError")).toContain("not valid")
    await logIn(page, tokens.admin)
    await page.waitForSelector("#partitions tbody tr:nth-child(2)")
    await page.waitForSelector("#deadLetters button[data-retry]")
    await page.screenshot({ path: join(SHOTS, "dashboard-admin-1280.png"), fullPage: true })
    await page.click("#deadLetters button[data-retry]")
    await page.waitForFunction(() => document.querySelector("#deadLetters button[data-retry]") === null)
    const left = await app.inject({ url: "/api/v1/dead-letters", headers: { authorization: `Bearer ${tokens.admin}` } })
    expect(JSON.parse(left.body)).toEqual({ items: [] })
    await page.close()
  }, 120_000)
})

/**
 * Where elements are drawn, in CSS pixels of the window, all measured at one instant (the chat
 * page redraws its messages every 700 ms: separate look-ups could fall between two drawings).
 */
const boxesOf = (page: Page, selectors: ReadonlyArray<string>) =>
  page.evaluate((all) => all.map((selector) => {
    const r = document.querySelector(selector)?.getBoundingClientRect()
    if (r === undefined) throw new Error(`${selector} is not drawn`)
    return { left: r.left, top: r.top, right: r.right, bottom: r.bottom, width: r.width }
  }), selectors)

describe("the sandbox chat page", () => {
  // 300 characters without a space: the page must wrap it, keep its bot list and stay in the window
  const longWord = "Supercalifragilistic".repeat(15)

  it("keeps the bot list and wraps a 300-character word, at 1280 px and on a 390 px phone", async () => {
    const sunny = sandbox.world.createBot({ username: "sunny_demo_bot", fleetId: "demo-sunny" })
    const clerk = sandbox.world.createBot({ username: "clerk_demo_bot", fleetId: "demo-clerk" })
    for (const [width, height, bot, open] of [
      [1280, 800, sunny, "/sandbox?bot=demo-sunny"],
      [390, 844, clerk, "/sandbox"]
    ] as const) {
      const page = await browser.newPage({ viewport: { width, height } })
      const errors: Array<string> = []
      page.on("pageerror", (e) => errors.push(e.message))
      await page.goto(`${sandbox.apiRoot}${open}`)
      // the list names each bot once, by its fleet id and its @username
      await page.waitForSelector(`nav button[data-u="${bot.username}"]`)
      expect(await page.textContent(`nav button[data-u="${bot.username}"]`)).toContain(`${bot.fleetId}@${bot.username}`)
      if (open === "/sandbox") await page.click(`nav button[data-u="${bot.username}"]`)
      await page.waitForSelector(`nav button.on[data-u="${bot.username}"]`)
      // the chat says whom it is with, phone included
      expect(await page.textContent("#title")).toBe(`${bot.fleetId} · @${bot.username}`)
      await page.fill("input[name=text]", longWord)
      await page.click("form button")
      await page.waitForSelector(".m.me")
      // the bot answers with the same word through the Bot API
      const sent = await fetch(`${sandbox.apiRoot}/bot${bot.token}/sendMessage`, {
        method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ chat_id: 1001, text: longWord })
      })
      expect(sent.status).toBe(200)
      await page.waitForSelector(".m.bot")

      // nothing wider than the window, and the chat itself scrolls only up and down
      expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(width)
      const log = await page.locator("#log").evaluate((el) => ({ scroll: (el as unknown as { scrollWidth: number }).scrollWidth, client: (el as unknown as { clientWidth: number }).clientWidth }))
      expect(log.scroll).toBeLessThanOrEqual(log.client)
      // the bot list is still there and wide enough to read and tap
      const [nav, picked, mine, theirs, input, send] = await boxesOf(page, ["nav", `nav button[data-u="${bot.username}"]`, ".m.me", ".m.bot", "input[name=text]", "form button"])
      if (!nav || !picked || !mine || !theirs || !input || !send) throw new Error("not every element was measured")
      if (width === 1280) expect(nav.width).toBeGreaterThanOrEqual(220)
      else expect(nav.width).toBe(width)
      expect(picked.width).toBeGreaterThanOrEqual(140)
      expect(picked.left).toBeGreaterThanOrEqual(0)
      expect(picked.right).toBeLessThanOrEqual(width)
      // both messages are inside the window, wrapped (taller than one line)
      for (const m of [mine, theirs]) {
        expect(m.left).toBeGreaterThanOrEqual(0)
        expect(m.right).toBeLessThanOrEqual(width)
        expect(m.top).toBeGreaterThanOrEqual(0)
        expect(m.bottom).toBeLessThanOrEqual(height)
        expect(m.bottom - m.top).toBeGreaterThan(40)
      }
      // and the message box can still be typed into and sent from
      expect(input.width).toBeGreaterThanOrEqual(150)
      expect(send.right).toBeLessThanOrEqual(width)
      await page.screenshot({ path: join(SHOTS, `sandbox-chat-${width}.png`) })
      expect(errors).toEqual([])
      await page.close()
    }
  }, 120_000)
})
