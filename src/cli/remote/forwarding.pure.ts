/*
 * Which commands a CLI run beside an embedded node sends to that node (the node runs them on its
 * own stores, remote.ts), and which it refuses because they cannot run while a node holds the
 * data folder. Decided on the command line alone, before anything is opened.
 */

export type Forwarding =
  /** Not about the data folder (help, version, `run`, `config`): runs here as usual. */
  | { readonly _tag: "Local" }
  | { readonly _tag: "Forward" }
  | { readonly _tag: "Refuse"; readonly command: string; readonly why: string }

const local: Forwarding = { _tag: "Local" }
const forward: Forwarding = { _tag: "Forward" }

/** Commands the node runs for the CLI: every subcommand, or only those listed. */
const forwarded: Readonly<Record<string, true | ReadonlyArray<string>>> = {
  status: true,
  bots: true,
  inspect: true,
  tail: true,
  tokens: true,
  owners: true,
  audit: ["verify"],
  dlq: ["list", "retry"],
  broadcast: true,
  users: true
}

const why: Readonly<Record<string, string>> = {
  import: "it writes a whole folder of history into the database, which needs it to itself",
  restore: "it replaces the database the node has open",
  backup: "it copies the database files while the node writes them (a running node takes scheduled backups: BACKUP_SCHEDULE)",
  migrate: "it changes the schema under the node (a node applies migrations itself when it starts)",
  rebuild: "it drops and rebuilds projections the node is writing",
  events: "it reads or writes a local file of events",
  replay: "it runs a bot's history against code in this process",
  divergence: "it rewrites hot-log entries the node reads",
  dlq: "reading or changing a bot's inbox dead letters is not yet sent to a running node"
}

/** What to do with `argv` (without node and script) while a live node holds the data folder. */
export const forwardingOf = (argv: ReadonlyArray<string>): Forwarding => {
  const [command, sub] = argv
  if (command === undefined || command.startsWith("-") || command === "run" || command === "config" || command === "help") return local
  // help is printed here: it reads nothing
  if (argv.includes("--help") || argv.includes("-h")) return local
  const rule = forwarded[command]
  if (rule === true) return forward
  if (rule !== undefined && sub !== undefined && rule.includes(sub) && !argv.includes("--bot")) return forward
  if (rule !== undefined && sub === undefined) return local
  const reason = why[command]
  return reason === undefined ? local : { _tag: "Refuse", command: [command, ...(rule !== undefined && sub !== undefined ? [sub] : [])].join(" "), why: reason }
}
