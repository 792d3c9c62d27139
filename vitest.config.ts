import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    globalSetup: ["test/support/globalSetup.ts"],
    reporters: ["default", "./test/support/summaryReporter.ts"],
    // integration suites mostly wait on Postgres and Redis: more files in flight than cores keeps both busy
    maxWorkers: 4,
    projects: [
      {
        extends: true,
        test: { name: "unit", include: ["test/**/*.unit.test.ts"] }
      },
      {
        extends: true,
        test: {
          name: "int",
          include: ["test/**/*.int.test.ts"],
          testTimeout: 60_000,
          hookTimeout: 60_000
        }
      }
    ],
    coverage: {
      provider: "v8",
      include: ["src/**/*.ts"],
      exclude: ["src/main.ts", "src/**/*.d.ts"],
      reporter: ["text-summary", "text"],
      // below 90 % of lines `npm test` fails
      thresholds: { lines: 90 }
    }
  }
})
