import type { TestProject } from "vitest/node"
import { resolveServices } from "./services.js"

declare module "vitest" {
  export interface ProvidedContext {
    databaseUrl: string
    redisUrl: string
  }
}

/** Resolves the services once for the whole run; suites read them with `inject()`. */
export default async function setup(project: TestProject) {
  // unit tests need no services: only resolve them when integration tests are in the run
  const wantsIntegration = project.name !== "unit"
  if (!wantsIntegration) return
  const { urls, stop } = await resolveServices()
  project.provide("databaseUrl", urls.databaseUrl)
  project.provide("redisUrl", urls.redisUrl)
  return stop
}
