/*
 * Redis Cluster addresses. A node is pointed at a cluster either by REDIS_CLUSTER_NODES (seed
 * nodes, `host:port,host:port`) or by a `redis+cluster://` URL; the configuration turns the first
 * into the second, so one string names the Redis of a fleet wherever a URL travels today (worker
 * threads, the CLI, the control channel) and `openRedis` alone decides between a plain client and
 * an ioredis `Cluster`.
 *
 *   redis+cluster://[user:password@]host1:port1,host2:port2[/]
 *   rediss+cluster://...   (TLS to every node)
 */

export interface ClusterNodeAddress {
  readonly host: string
  readonly port: number
}

export interface ClusterUrl {
  readonly nodes: ReadonlyArray<ClusterNodeAddress>
  readonly username: string | undefined
  readonly password: string | undefined
  readonly tls: boolean
}

const SCHEME = /^(rediss?)\+cluster:\/\/(.*)$/

/** True for `redis+cluster://` and `rediss+cluster://` URLs (valid or not). */
export const isClusterUrl = (url: string): boolean => SCHEME.test(url)

const parseNode = (raw: string): ClusterNodeAddress | undefined => {
  // `[::1]:7000` or `host:7000`; the port is required: a cluster has no default port worth guessing
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/.exec(raw.trim())
  if (!m) return undefined
  const port = Number(m[3])
  if (!Number.isInteger(port) || port < 1 || port > 65535) return undefined
  return { host: m[1] ?? m[2]!, port }
}

/** `host:port,host:port` (REDIS_CLUSTER_NODES) as addresses; undefined when any part is not one. */
export const parseClusterNodes = (raw: string): ReadonlyArray<ClusterNodeAddress> | undefined => {
  const parts = raw.split(",").filter((p) => p.trim() !== "")
  if (parts.length === 0) return undefined
  const nodes: ClusterNodeAddress[] = []
  for (const p of parts) {
    const n = parseNode(p)
    if (!n) return undefined
    nodes.push(n)
  }
  return nodes
}

const decode = (s: string): string | undefined => {
  try {
    return decodeURIComponent(s)
  } catch {
    return undefined
  }
}

/** A `redis+cluster://` URL's parts; undefined when it is not one or is malformed. */
export const parseClusterUrl = (url: string): ClusterUrl | undefined => {
  const m = SCHEME.exec(url)
  if (!m) return undefined
  const tls = m[1] === "rediss"
  let rest = m[2]!
  // nothing after the host list is meaningful for a cluster (no database number): only a bare "/"
  const slash = rest.indexOf("/")
  if (slash >= 0) {
    if (rest.slice(slash) !== "/") return undefined
    rest = rest.slice(0, slash)
  }
  const at = rest.lastIndexOf("@")
  let username: string | undefined
  let password: string | undefined
  if (at >= 0) {
    const info = rest.slice(0, at)
    rest = rest.slice(at + 1)
    const colon = info.indexOf(":")
    const user = decode(colon >= 0 ? info.slice(0, colon) : info)
    const pass = colon >= 0 ? decode(info.slice(colon + 1)) : undefined
    if (user === undefined || (colon >= 0 && pass === undefined)) return undefined
    username = user === "" ? undefined : user
    password = pass === "" ? undefined : pass
  }
  const nodes = parseClusterNodes(rest)
  return nodes ? { nodes, username, password, tls } : undefined
}

const formatNode = (n: ClusterNodeAddress) => (n.host.includes(":") ? `[${n.host}]:${n.port}` : `${n.host}:${n.port}`)

/**
 * The cluster URL of `nodes`, with the credentials and TLS choice of `base` (a `redis://` or
 * `rediss://` URL, REDIS_URL, whose host is then ignored) when there is one.
 */
export const clusterUrlOf = (nodes: ReadonlyArray<ClusterNodeAddress>, base?: { readonly username: string; readonly password: string; readonly tls: boolean }): string => {
  const auth = base && (base.username !== "" || base.password !== "") ? `${base.username}${base.password !== "" ? `:${base.password}` : ""}@` : ""
  return `${base?.tls ? "rediss" : "redis"}+cluster://${auth}${nodes.map(formatNode).join(",")}`
}

/** The URL for logs and errors: host list only, never a password. */
export const describeRedisUrl = (url: string): string => {
  const c = parseClusterUrl(url)
  if (c) return `cluster ${c.nodes.map(formatNode).join(",")}`
  try {
    const u = new URL(url)
    return `${u.hostname}:${u.port || "6379"}`
  } catch {
    return "(unparsable URL)"
  }
}
