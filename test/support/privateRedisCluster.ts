import { execFile, spawn } from "node:child_process"
import type { ChildProcess } from "node:child_process"
import { mkdir, mkdtemp, readFile, rm } from "node:fs/promises"
import { createServer } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { promisify } from "node:util"
import { Redis } from "ioredis"
import { clusterUrlOf, parseClusterNodes } from "../../src/health/redisUrl.pure.js"

/*
 * A real Redis Cluster of the test's own: 3 masters + 3 replicas, `redis-server --cluster-enabled
 * yes` on free ports in a temp folder, joined with `redis-cli --cluster create --cluster-replicas 1`.
 * Never the shared servers. Nodes can be killed (SIGKILL) and failed over, for the failover drills.
 *
 * `.ci/run` starts one the same way when no cluster is configured and exports TEST_REDIS_CLUSTER_NODES (not REDIS_CLUSTER_NODES: every node a test spawns would inherit it and run on the cluster);
 * `testRedisCluster()` uses that one when it is set (tests on it only add keys under their own
 * prefix) and starts a private one otherwise.
 */

const run = promisify(execFile)

/** A free port whose cluster bus port (+10000) is free too. */
const freeClusterPort = async (): Promise<number> => {
  const free = (port: number) =>
    new Promise<boolean>((resolve) => {
      const probe = createServer()
      probe.once("error", () => resolve(false))
      probe.listen(port, "127.0.0.1", () => probe.close(() => resolve(true)))
    })
  for (let i = 0; i < 200; i++) {
    const port = 20_000 + Math.floor(Math.random() * 30_000)
    if ((await free(port)) && (await free(port + 10_000))) return port
  }
  throw new Error("no free port pair for a Redis Cluster node")
}

export interface ClusterNode {
  readonly port: number
  /** True while its process runs. */
  readonly alive: () => boolean
}

export interface PrivateRedisCluster {
  /** `redis+cluster://127.0.0.1:p1,...`: what REDIS_CLUSTER_NODES turns into. */
  readonly url: string
  readonly nodes: ReadonlyArray<ClusterNode>
  /** A plain client on one node (for CLUSTER commands and INFO); the caller disconnects it. */
  readonly client: (port: number) => Redis
  /** The port of the master serving `slot`, as the cluster itself says now. */
  readonly masterOf: (slot: number) => Promise<number>
  /** A replica of the master at `port` that is up and linked. */
  readonly replicaOf: (port: number) => Promise<number>
  /** SIGKILL of one node: what a crashed Redis host looks like to the cluster. */
  readonly kill: (port: number) => Promise<void>
  /** Resolves once every slot is served and the cluster state is ok, seen from every live node. */
  readonly waitHealthy: (timeoutMs?: number) => Promise<void>
  /** Stops every node and deletes the folder (a no-op for a cluster the test did not start). */
  readonly close: () => Promise<void>
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

const until = async (what: string, cond: () => Promise<boolean>, timeoutMs: number) => {
  const end = Date.now() + timeoutMs
  let last: unknown = null
  while (Date.now() < end) {
    try {
      if (await cond()) return
    } catch (e) {
      last = e
    }
    await sleep(100)
  }
  throw new Error(`${what} within ${timeoutMs} ms${last instanceof Error ? ` (${last.message})` : ""}`)
}

const clientOn = (port: number) => {
  const r = new Redis({ host: "127.0.0.1", port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null })
  r.on("error", () => undefined)
  return r
}

const withNode = async <A>(port: number, f: (r: Redis) => Promise<A>): Promise<A> => {
  const r = clientOn(port)
  try {
    await r.connect()
    return await f(r)
  } finally {
    r.disconnect()
  }
}

const clusterInfo = (r: Redis) => r.cluster("INFO") as Promise<string>

const healthyFrom = (port: number) =>
  withNode(port, async (r) => {
    const info = await clusterInfo(r)
    return /cluster_state:ok/.test(info) && /cluster_slots_ok:16384/.test(info)
  })

/** CLUSTER SLOTS as [start, end, masterPort]. */
const slotsFrom = async (r: Redis) => (await r.cluster("SLOTS")) as unknown as Array<[number, number, [string, number, ...unknown[]], ...unknown[]]>

const operations = (ports: ReadonlyArray<number>, alive: (port: number) => boolean) => ({
  client: (port: number) => clientOn(port),
  masterOf: async (slot: number) => {
    for (const port of ports.filter(alive)) {
      try {
        const slots = await withNode(port, slotsFrom)
        const range = slots.find(([start, end]) => slot >= start && slot <= end)
        if (range) return Number(range[2][1])
      } catch {
        // that node is not answering: ask the next
      }
    }
    throw new Error(`no live node knows who serves slot ${slot}`)
  },
  replicaOf: async (masterPort: number) => {
    const id = (await withNode(masterPort, (r) => r.cluster("MYID"))) as string
    for (const port of ports.filter((p) => p !== masterPort && alive(p))) {
      const linked = await withNode(port, async (r) => {
        const info = await r.info("replication")
        const nodes = (await r.cluster("NODES")) as string
        const myself = nodes.split("\n").find((l) => l.includes("myself"))
        return /role:slave/.test(info) && /master_link_status:up/.test(info) && myself?.split(" ")[3] === id
      }).catch(() => false)
      if (linked) return port
    }
    throw new Error(`no linked replica of the master on ${masterPort}`)
  },
  waitHealthy: (timeoutMs = 60_000) =>
    until(
      "the Redis Cluster did not become healthy (all slots served, state ok)",
      async () => (await Promise.all(ports.filter(alive).map(healthyFrom))).every(Boolean),
      timeoutMs
    )
})

/**
 * Starts 3 masters + 3 replicas. `nodeTimeoutMs` is the cluster's node timeout: how long a master
 * must be unreachable before its replica is promoted (short here, so drills finish quickly; 15 s
 * is Redis' default).
 */
export const startPrivateRedisCluster = async (o: { readonly nodeTimeoutMs?: number } = {}): Promise<PrivateRedisCluster> => {
  const dir = await mkdtemp(join(tmpdir(), "bf-redis-cluster-"))
  const ports: number[] = []
  for (let i = 0; i < 6; i++) {
    let p = await freeClusterPort()
    while (ports.includes(p)) p = await freeClusterPort()
    ports.push(p)
  }
  const children = new Map<number, ChildProcess>()
  const alive = (port: number) => {
    const c = children.get(port)
    return c !== undefined && c.exitCode === null && c.signalCode === null
  }
  const start = async (port: number) => {
    const nodeDir = join(dir, String(port))
    await mkdir(nodeDir, { recursive: true })
    const args = [
      "--port", String(port), "--bind", "127.0.0.1", "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
      "--cluster-node-timeout", String(o.nodeTimeoutMs ?? 1000), "--appendonly", "no", "--save", "", "--dir", nodeDir,
      "--daemonize", "no", "--logfile", join(nodeDir, "redis.log")
    ]
    children.set(port, spawn("redis-server", args, { stdio: "ignore" }))
  }
  const stopAll = async () => {
    for (const c of children.values()) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL")
    await Promise.all([...children.values()].map((c) => (c.exitCode !== null || c.signalCode !== null ? null : new Promise((r) => c.once("exit", r)))))
    await rm(dir, { recursive: true, force: true })
  }
  /** A node that exited on its own (a port taken meanwhile, a bad option): fail at once, with its log. */
  const checkAlive = async () => {
    for (const port of ports) {
      if (!alive(port)) {
        const tail = await readFile(join(dir, String(port), "redis.log"), "utf8").catch(() => "")
        throw new Error(`redis-server on ${port} exited: ${tail.trim().split("\n").slice(-3).join(" | ")}`)
      }
    }
  }
  try {
    await Promise.all(ports.map(start))
    await sleep(200)
    await checkAlive()
    await Promise.all(ports.map((p) => until(`redis-server on ${p} did not answer`, () => withNode(p, async (r) => (await r.ping()) === "PONG"), 30_000)))
    await checkAlive()
    await run("redis-cli", ["--cluster", "create", ...ports.map((p) => `127.0.0.1:${p}`), "--cluster-replicas", "1", "--cluster-yes"], { timeout: 60_000 })
    const ops = operations(ports, alive)
    await ops.waitHealthy()
    // every replica linked to its master, so a drill's failover has someone to promote
    await until(
      "the Redis Cluster's replicas did not link to their masters",
      async () => {
        const roles = await Promise.all(ports.map((p) => withNode(p, (r) => r.info("replication"))))
        return roles.filter((i) => /role:slave/.test(i) && /master_link_status:up/.test(i)).length === 3
      },
      60_000
    )
    return {
      url: clusterUrlOf(ports.map((port) => ({ host: "127.0.0.1", port }))),
      nodes: ports.map((port) => ({ port, alive: () => alive(port) })),
      ...ops,
      kill: async (port) => {
        const c = children.get(port)
        if (!c || !alive(port)) return
        c.kill("SIGKILL")
        await new Promise((r) => c.once("exit", r))
      },
      close: stopAll
    }
  } catch (e) {
    await stopAll()
    throw e
  }
}

/**
 * The cluster a test runs on: TEST_REDIS_CLUSTER_NODES when set (`.ci/run` starts one; never killed or
 * failed over by a test: `kill` refuses), else a private one started now.
 */
export const testRedisCluster = async (): Promise<PrivateRedisCluster> => {
  const configured = process.env["TEST_REDIS_CLUSTER_NODES"]
  if (configured === undefined || configured.trim() === "") return startPrivateRedisCluster()
  const nodes = parseClusterNodes(configured)
  if (!nodes) throw new Error(`TEST_REDIS_CLUSTER_NODES is not host:port[,host:port...]: ${configured}`)
  const ports = nodes.map((n) => n.port)
  return {
    url: clusterUrlOf(nodes),
    nodes: ports.map((port) => ({ port, alive: () => true })),
    ...operations(ports, () => true),
    kill: async () => {
      throw new Error("refusing to kill a node of the configured cluster (TEST_REDIS_CLUSTER_NODES): drills start a private cluster")
    },
    close: async () => undefined
  }
}
