import net from "node:net"

/**
 * Where the integration tests find Postgres and Redis: DATABASE_URL / REDIS_URL when set, the
 * local servers on their standard ports when they answer, otherwise containers started with
 * testcontainers (a laptop with Docker). When none works, tests fail with one sentence saying
 * what to start: they never skip.
 */
export interface ServiceUrls {
  readonly databaseUrl: string
  readonly redisUrl: string
}

const reachable = (host: string, port: number, timeoutMs = 1000) =>
  new Promise<boolean>((resolve) => {
    const socket = net.connect({ host, port })
    const done = (ok: boolean) => {
      socket.destroy()
      resolve(ok)
    }
    socket.setTimeout(timeoutMs, () => done(false))
    socket.once("connect", () => done(true))
    socket.once("error", () => done(false))
  })

export const resolveServices = async (): Promise<{ urls: ServiceUrls; stop: () => Promise<void> }> => {
  let databaseUrl = process.env["DATABASE_URL"]
  let redisUrl = process.env["REDIS_URL"]
  const stops: Array<() => Promise<void>> = []
  if (!databaseUrl && (await reachable("127.0.0.1", 5432))) databaseUrl = "postgres://postgres@127.0.0.1:5432/postgres"
  if (!redisUrl && (await reachable("127.0.0.1", 6379))) redisUrl = "redis://127.0.0.1:6379"
  if (!databaseUrl || !redisUrl) {
    try {
      const { GenericContainer, Wait } = await import("testcontainers")
      if (!databaseUrl) {
        const pg = await new GenericContainer("postgres:15")
          .withEnvironment({ POSTGRES_HOST_AUTH_METHOD: "trust" })
          .withExposedPorts(5432)
          .withWaitStrategy(Wait.forLogMessage(/database system is ready to accept connections/, 2))
          .start()
        databaseUrl = `postgres://postgres@${pg.getHost()}:${pg.getMappedPort(5432)}/postgres`
        stops.push(async () => void (await pg.stop()))
      }
      if (!redisUrl) {
        const redis = await new GenericContainer("redis:7").withExposedPorts(6379).start()
        redisUrl = `redis://${redis.getHost()}:${redis.getMappedPort(6379)}`
        stops.push(async () => void (await redis.stop()))
      }
    } catch (e) {
      const missing = [!databaseUrl && "PostgreSQL on 127.0.0.1:5432 (or set DATABASE_URL)", !redisUrl && "Redis on 127.0.0.1:6379 (or set REDIS_URL)"]
        .filter(Boolean)
        .join(" and ")
      throw new Error(
        `Integration tests need ${missing}; none is reachable and Docker could not start one (${(e as Error).message}). Start them, e.g. with bash .ci/run.`
      )
    }
  }
  return { urls: { databaseUrl, redisUrl }, stop: async () => void (await Promise.all(stops.map((s) => s()))) }
}
