import { randomBytes } from "node:crypto"
import { existsSync } from "node:fs"
import { mkdtemp, readFile, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import { parse } from "yaml"
import { loadConfig, settings } from "../../src/config.js"
import { captureCli } from "../cli/support.js"
import { promtool } from "../support/promtool.js"

/*
 * Docker does not run on our machines, so the deployment files are checked as text: the compose
 * file's services and each node's environment against the settings botfleet knows (every value
 * must load), Prometheus against the nodes and the alert rules, the systemd unit and its
 * environment file, and the Dockerfile's commands against what .ci/run runs.
 */

const root = (rel: string) => fileURLToPath(new URL(`../../${rel}`, import.meta.url))
const text = (rel: string) => readFile(root(rel), "utf8")
const knownNames = new Set<string>(Object.values(settings).map((s) => s.name))
const secretKey = randomBytes(32).toString("base64")

/** Compose's ${VAR:?message} and ${VAR:-default}, as an operator's shell would fill them in. */
const interpolate = (value: string, vars: Record<string, string>) =>
  value.replace(/\$\{(\w+)(?::([?-])([^}]*))?\}/g, (_m, name: string, op: string | undefined, rest: string | undefined) => {
    if (vars[name] !== undefined) return vars[name]!
    if (op === "-") return rest ?? ""
    throw new Error(`compose needs ${name}: ${rest ?? ""}`)
  })

interface ComposeService {
  image?: string
  build?: string
  environment?: Record<string, string | number>
  volumes?: string[]
  ports?: string[]
  restart?: string
  healthcheck?: unknown
}

describe("deployment files", () => {
  it("compose.yaml: Redis, PostgreSQL, two nodes and Prometheus; every node setting is one botfleet knows, and loads", async () => {
    const compose = parse(await text("compose.yaml"), { merge: true }) as { services: Record<string, ComposeService> }
    expect(Object.keys(compose.services).sort()).toEqual(["node-1", "node-2", "postgres", "prometheus", "redis"])
    const nodes = ["node-1", "node-2"].map((n) => compose.services[n]!)
    const pg = compose.services["postgres"]!.environment!
    const ids = new Set<string>()
    const docs = await text("docs/cli.md")
    const scratch = await mkdtemp(join(tmpdir(), "bf-compose-"))
    const shown = await captureCli({ DATA_DIR: scratch, LOG_LEVEL: "warning" }, ["config"]).then((r) => r.out).finally(() => rm(scratch, { recursive: true, force: true }))
    for (const node of nodes) {
      expect(node.build).toBe(".")
      expect(node.restart).toBe("on-failure")
      const env = Object.fromEntries(Object.entries(node.environment!).map(([k, v]) => [k, interpolate(String(v), { BOTFLEET_SECRET_KEY: secretKey })]))
      expect(Object.keys(env).filter((k) => !knownNames.has(k))).toEqual([])
      // each documented in the settings table, and shown by `botfleet config`
      for (const k of Object.keys(env)) {
        expect(docs).toContain(`\`${k}\``)
        expect(shown).toContain(k)
      }
      const config = await Effect.runPromise(loadConfig(env))
      expect(config.mode).toBe("production")
      ids.add(config.nodeId)
      expect(new URL(env["REDIS_URL"]!).hostname).toBe("redis")
      const db = new URL(env["DATABASE_URL"]!)
      expect([db.hostname, db.username, db.password, db.pathname]).toEqual(["postgres", pg["POSTGRES_USER"], pg["POSTGRES_PASSWORD"], `/${pg["POSTGRES_DB"]}`])
    }
    expect(ids.size).toBe(2)
    // Redis never evicts (an evicted stream entry would be a lost event) and keeps an AOF
    const redisCommand = (compose.services["redis"] as { command: string[] }).command.join(" ")
    expect(redisCommand).toContain("--maxmemory-policy noeviction")
    expect(redisCommand).toContain("--appendonly yes")
    expect(() => interpolate("${BOTFLEET_SECRET_KEY:?set it}", {})).toThrow(/BOTFLEET_SECRET_KEY/)
  })

  it("Prometheus scrapes both nodes and loads the alert rules (promtool check config)", async () => {
    const compose = parse(await text("compose.yaml"), { merge: true }) as { services: Record<string, ComposeService> }
    const mounts = compose.services["prometheus"]!.volumes!.map((v) => v.split(":")[0])
    expect(mounts).toEqual(["./deploy/prometheus/prometheus.yml", "./deploy/prometheus/alerts.yml"])
    const prom = parse(await text("deploy/prometheus/prometheus.yml")) as { rule_files: string[]; scrape_configs: Array<{ metrics_path: string; static_configs: Array<{ targets: string[] }> }> }
    expect(prom.rule_files).toEqual(["alerts.yml"])
    expect(prom.scrape_configs[0]!.metrics_path).toBe("/metrics")
    expect(prom.scrape_configs[0]!.static_configs[0]!.targets).toEqual(["node-1:8080", "node-2:8080"])
    const checked = await promtool(["check", "config", root("deploy/prometheus/prometheus.yml")])
    expect(checked.stdout + checked.stderr).toContain("SUCCESS")
    expect(checked.code).toBe(0)
  })

  it("the systemd unit restarts on failure, reads its settings from the environment file, and those settings load", async () => {
    const unit = await text("deploy/systemd/botfleet.service")
    expect(unit).toMatch(/^Restart=on-failure$/m)
    expect(unit).toMatch(/^EnvironmentFile=\/etc\/botfleet\/botfleet\.env$/m)
    expect(unit).toMatch(/^ExecStart=\/usr\/bin\/node dist\/cli\/bin\.js run --no-sandbox$/m)
    expect(unit).toMatch(/^User=botfleet$/m)
    const env = Object.fromEntries(
      (await text("deploy/systemd/botfleet.env"))
        .split("\n")
        .filter((l) => l.trim() !== "" && !l.startsWith("#"))
        .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)])
    )
    expect(Object.keys(env).filter((k) => !knownNames.has(k))).toEqual([])
    // as shipped, the placeholder key is refused (a clear error, not a node with a made-up key)
    const refused = await Effect.runPromise(Effect.flip(loadConfig(env)))
    expect(refused.message).toContain("BOTFLEET_SECRET_KEY")
    const config = await Effect.runPromise(loadConfig({ ...env, BOTFLEET_SECRET_KEY: secretKey }))
    expect(config.mode).toBe("production")
  })

  it("the Dockerfile builds with the commands .ci/run runs, runs the compiled entry as a non-root user, and checks /ready", async () => {
    const dockerfile = await text("Dockerfile")
    const ci = await text(".ci/run")
    const runs = [...dockerfile.matchAll(/^RUN (.+)$/gm)].map((m) => m[1]!)
    const npm = runs.filter((r) => r.startsWith("npm "))
    expect(npm).toEqual(["npm ci --no-audit --no-fund", "npm run build", "npm ci --omit=dev --no-audit --no-fund"])
    // the same install (the lockfile's exact versions) and the same build; the last stage only leaves the dev tools out
    for (const command of npm) expect(ci.split("\n")).toContain(command.replace(" --omit=dev", ""))
    expect(dockerfile.match(/^FROM /gm)).toHaveLength(3)
    expect(dockerfile).toMatch(/^USER node$/m)
    expect(dockerfile).toMatch(/^HEALTHCHECK .*\n?.*\/ready/m)
    expect(dockerfile).toContain('ENTRYPOINT ["node", "dist/cli/bin.js"]')
    // what it copies exists, and the build emits its entry point (src/cli/bin.ts → dist/cli/bin.js)
    for (const m of dockerfile.matchAll(/^COPY (?!--from)(.+) \S+$/gm)) for (const src of m[1]!.split(" ")) expect(existsSync(root(src)), src).toBe(true)
    expect(existsSync(root("src/cli/bin.ts"))).toBe(true)
    const pkg = JSON.parse(await text("package.json")) as { scripts: Record<string, string> }
    // npm run build and npm's prepare step (which every npm ci runs) are scripts/build.js, so each
    // stage copies it before installing; it compiles with tsconfig.build.json
    expect(pkg.scripts["build"]).toBe("node scripts/build.js")
    expect(pkg.scripts["prepare"]).toBe("node scripts/build.js --prepare")
    expect(await text("scripts/build.js")).toContain('"tsconfig.build.json"')
    for (const stage of dockerfile.split(/^FROM /m).filter((s) => s.includes("npm ci"))) {
      expect(stage.indexOf("COPY scripts ./scripts")).toBeGreaterThan(-1)
      expect(stage.indexOf("COPY scripts ./scripts")).toBeLessThan(stage.indexOf("RUN npm ci"))
    }
    const build = JSON.parse(await text("tsconfig.build.json")) as { compilerOptions: { outDir: string; rootDir: string } }
    expect(build.compilerOptions).toMatchObject({ outDir: "dist", rootDir: "src" })
  })
})
