import { userInfo } from "node:os"
import { Command, InvalidArgumentError, Option as CliOption } from "commander"
import { Data, Effect, Option, Redacted } from "effect"
import { AppConfig } from "../../config.js"
import type { BotfleetConfig } from "../../config.js"
import { appendFleetEvent } from "../../runtime/fleetEvents.js"
import { checkLiveSetting, makeLiveSettings } from "../../runtime/liveSettings.js"
import type { SettingValue } from "../../runtime/liveSettings.js"
import { askNodes } from "../../runtime/settingsControl.js"
import type { NodeReply } from "../../runtime/settingsControl.js"
import { openStores } from "../../runtime/stores.js"
import { printJson, printTable } from "../io.js"
import type { CliIo } from "../io.js"
import { CommandFailed, runCommand, UsageError } from "../runtime.js"

type SetExit = (code: number) => void

/*
 * `botfleet config`: every setting with the value in effect on this command's side and on each
 * running node, and where each value comes from (default, env, file, live). `botfleet config set`:
 * changes a live setting on one node or on all of them through the control channel, and records
 * it as a fleet event (FleetSettingChanged) that the audit log shows. docs/operations-config.md.
 */

/** Live settings travel over the control channel, which embedded mode does not have. */
export class LiveSettingsNeedNodes extends Data.TaggedError("LiveSettingsNeedNodes")<{ readonly reason: "embedded" | "no-node"; readonly name: string }> {
  override get message() {
    return this.reason === "embedded"
      ? `${this.name}: live settings reach nodes over the control channel (production mode). In embedded mode one process owns DATA_DIR: stop it, set ${this.name} in the environment or BOTFLEET_CONFIG, and start it again.`
      : `${this.name}: no running node heard the change (none is running, or none is the one named): nothing changed, nothing recorded. Nodes started later read the environment and BOTFLEET_CONFIG.`
  }
}

const waitOption = (fallback: number) =>
  new CliOption("--wait <ms>", "how long to wait for the nodes' answers").default(fallback).argParser((v) => {
    const n = Number(v)
    if (!Number.isInteger(n) || n < 100 || n > 600_000) throw new InvalidArgumentError("expected milliseconds, an integer from 100 to 600000")
    return n
  })

const controlOf = (config: BotfleetConfig, timeoutMs: number) =>
  Option.isSome(config.redisUrl) && config.mode === "production" ? { redisUrl: Redacted.value(config.redisUrl.value), prefix: config.redisPrefix, timeoutMs } : null

const cell = (s: Pick<SettingValue, "value"> & { readonly source: string } | undefined) => (s === undefined ? "?" : `${s.value} (${s.source})`)

/** Who changed it, for the audit: the operator's login on the machine the CLI ran on. */
const operator = () => {
  try {
    return `ops:cli:${userInfo().username}`
  } catch {
    return "ops:cli"
  }
}

/** `botfleet config [--json] [--wait ms]`, with `config set` beneath it. */
export const configCommand = (io: CliIo, setExit: SetExit): Command => {
  const command = new Command("config")
    // `config set --json`: the subcommand's own options, not the parent's
    .enablePositionalOptions()
    .description("print every setting in effect here and on each running node, with its source (default, env, file, live); secrets redacted")
    .option("--json", "print as JSON")
    .addOption(waitOption(2000))
    .action(async (opts: { json?: boolean; wait: number }) => {
      const program = Effect.gen(function* () {
        const config = yield* AppConfig
        const local = makeLiveSettings(config).describe()
        const control = controlOf(config, opts.wait)
        const asked = control === null ? null : yield* Effect.either(askNodes(control, { _tag: "DescribeSettings", target: "*" }))
        const nodes = asked?._tag === "Right" ? asked.right.replies.filter((r) => r.ok).map((r) => ({ nodeId: r.nodeId, settings: r.settings ?? [] })) : []
        const missing = asked?._tag === "Right" ? asked.right.missing : 0
        if (opts.json) return printJson(io, { settings: local, nodes, nodesMissing: missing })
        const byNode = nodes.map((n) => [n.nodeId, new Map(n.settings.map((s) => [s.name, s]))] as const)
        printTable(
          io,
          local.map((s) => ({
            setting: s.name,
            [control === null ? "value" : "here"]: `${s.value} (${s.source})`,
            live: s.live ? "yes" : "restart",
            ...Object.fromEntries(byNode.map(([id, m]) => [id, cell(m.get(s.name))]))
          }))
        )
        if (control === null) io.stdout("embedded mode: the values of this process (a running node reads the same environment and file)")
        else if (asked?._tag === "Left") io.stdout(`running nodes not asked: ${asked.left.message}`)
        else io.stdout(nodes.length === 0 ? "no running node answered" : `${nodes.length} running node${nodes.length === 1 ? "" : "s"}${missing > 0 ? `; ${missing} did not answer within ${opts.wait} ms` : ""}`)
      })
      setExit(await runCommand(program, undefined, { env: io.env, stderr: io.stderr }))
    })

  command.addCommand(
    new Command("set")
      .description("change a live setting on running nodes without a restart (recorded as a fleet event); KEY= (empty) goes back to the start value")
      .argument("<KEY=VALUE>", "the setting and its new value")
      .option("--node <id>", "only this node")
      .option("--all", "every running node (the default)")
      .addOption(waitOption(15_000))
      .option("--json", "print the result as JSON")
      .action(async (assignment: string, opts: { node?: string; all?: boolean; wait: number; json?: boolean }) => {
        const program = Effect.gen(function* () {
          const eq = assignment.indexOf("=")
          if (eq <= 0) return yield* new UsageError({ detail: `${JSON.stringify(assignment)}: expected KEY=VALUE (KEY= to go back to the start value)` })
          if (opts.node !== undefined && opts.all === true) return yield* new UsageError({ detail: "give --node <id> or --all, not both" })
          const name = assignment.slice(0, eq).trim()
          const raw = assignment.slice(eq + 1)
          const value = raw.trim() === "" ? null : raw.trim()
          const config = yield* AppConfig
          // checked here first: an unknown setting, one that needs a restart or a bad value reaches no node
          yield* checkLiveSetting(config, {}, name, value)
          const control = controlOf(config, opts.wait)
          if (control === null) return yield* new LiveSettingsNeedNodes({ reason: "embedded", name })
          const target = opts.node ?? "*"
          const answers = yield* askNodes(control, { _tag: "SetSetting", target, name, value })
          const applied = answers.replies.filter((r): r is NodeReply & { change: NonNullable<NodeReply["change"]> } => r.ok && r.change !== undefined)
          const refused = answers.replies.filter((r) => !r.ok)
          if (applied.length === 0 && refused.length === 0) return yield* new LiveSettingsNeedNodes({ reason: "no-node", name })
          const appended =
            applied.length === 0
              ? null
              : yield* Effect.either(
                  Effect.scoped(
                    Effect.flatMap(openStores(config), (stores) =>
                      appendFleetEvent(
                        stores.log,
                        {
                          _tag: "FleetSettingChanged",
                          setting: name,
                          value,
                          scope: target === "*" ? "all" : target,
                          nodes: applied.map((r) => ({ nodeId: r.nodeId, old: r.change.old, value: r.change.value, source: r.change.source }))
                        },
                        operator()
                      )
                    )
                  )
                )
          const recorded = appended !== null && appended._tag === "Right" ? appended.right : null
          const result = {
            setting: name,
            value,
            scope: target === "*" ? "all" : target,
            nodes: applied.map((r) => ({ nodeId: r.nodeId, ...r.change })),
            refused: refused.map((r) => ({ nodeId: r.nodeId, error: r.error ?? "refused" })),
            missing: answers.missing,
            fleetVersion: recorded
          }
          if (opts.json) printJson(io, result)
          else {
            printTable(io, [
              ...result.nodes.map((n) => ({ node: n.nodeId, before: n.old, now: n.value, source: n.source })),
              ...result.refused.map((n) => ({ node: n.nodeId, before: "", now: "", source: `REFUSED: ${n.error}` }))
            ])
            if (recorded !== null) io.stdout(`${name} changed on ${applied.length} node${applied.length === 1 ? "" : "s"}; recorded as a fleet event (the audit log shows it). It lasts until each node restarts: set it in the environment or BOTFLEET_CONFIG to keep it.`)
          }
          if (appended !== null && appended._tag === "Left") {
            return yield* new CommandFailed({ detail: `${name} changed on ${applied.length} node${applied.length === 1 ? "" : "s"}, but the change could not be recorded as a fleet event: ${appended.left.message}` })
          }
          if (refused.length > 0 || answers.missing > 0) {
            return yield* new CommandFailed({
              detail: `${name}: ${refused.length} node${refused.length === 1 ? "" : "s"} refused it${answers.missing > 0 ? `, ${answers.missing} did not answer within ${opts.wait} ms (check botfleet config)` : ""}`
            })
          }
        })
        setExit(await runCommand(program, undefined, { env: io.env, stderr: io.stderr }))
      })
  )
  return command
}
