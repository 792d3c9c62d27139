import { readFile } from "node:fs/promises"
import { fileURLToPath } from "node:url"
import { describe, expect, it } from "vitest"
import { metricNames, setRedisMemory } from "../../src/metrics/registry.js"
import { promtool } from "../support/promtool.js"

/*
 * The alert rules shipped in deploy/prometheus: valid, each one tested by promtool against series
 * that should and should not fire it, and written against metrics a node really exposes.
 */

const rules = fileURLToPath(new URL("../../deploy/prometheus/alerts.yml", import.meta.url))
const tests = fileURLToPath(new URL("../../deploy/prometheus/alerts.test.yml", import.meta.url))
const names = (text: string, pattern: RegExp) => [...new Set([...text.matchAll(pattern)].map((m) => m[1]!))]

describe("alert rules (deploy/prometheus/alerts.yml)", () => {
  it("are valid rules, and pass their promtool unit tests", async () => {
    const checked = await promtool(["check", "rules", rules])
    expect(checked.stderr).toBe("")
    expect(checked.stdout).toContain("SUCCESS: 9 rules found")
    expect(checked.code).toBe(0)
    const tested = await promtool(["test", "rules", tests])
    expect(tested.stdout + tested.stderr).toContain("SUCCESS")
    expect(tested.code).toBe(0)
  })

  it("each alert is tested both firing and silent", async () => {
    const alerts = names(await readFile(rules, "utf8"), /- alert: (\w+)/g)
    expect(alerts).toEqual([
      "BotfleetNodeDown",
      "BotfleetProjectionLag",
      "BotfleetProjectorStalled",
      "BotfleetDeadLettersGrowing",
      "BotfleetUpdatesDeadLettered",
      "BotfleetBotGaveUp",
      "BotfleetRateLimitStorm",
      "BotfleetRedisMemoryHigh",
      "BotfleetWebhook5xx"
    ])
    const text = await readFile(tests, "utf8")
    for (const alert of alerts) {
      const cases = text.split("- eval_time:").filter((c) => c.includes(`alertname: ${alert}\n`))
      expect(cases.filter((c) => c.includes("exp_alerts: []")), `${alert} silent`).toHaveLength(1)
      expect(cases.filter((c) => c.includes("exp_labels:")), `${alert} firing`).toHaveLength(1)
    }
  })

  it("use only metrics a node exposes", async () => {
    setRedisMemory(0, 0) // registered once a production node has read Redis
    const exposed = new Set(metricNames())
    const used = names(await readFile(rules, "utf8"), /\b(botfleet_[a-z_]+)/g)
    expect(used.length).toBeGreaterThan(8)
    expect(used.filter((m) => !exposed.has(m.replace(/_(bucket|sum|count)$/, "")))).toEqual([])
    const fed = names(await readFile(tests, "utf8"), /series: '(botfleet_[a-z_]+)\{/g)
    expect(fed.filter((m) => !exposed.has(m))).toEqual([])
  })
})
