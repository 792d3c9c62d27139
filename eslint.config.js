// @ts-check
import tseslint from "typescript-eslint"

/** Folders whose code must stay pure: no I/O clients, no Node built-ins, so it runs the same in replay. */
const pureFolders = ["src/events/schema/**", "src/actors/decider/**", "src/projections/mapping/**", "src/**/*.pure.ts"]
const ioModules = ["ioredis", "pg", "piscina", "@electric-sql/pglite", "fastify", "telegraf", "node:*", "fs", "net", "http", "worker_threads", "child_process"]

export default tseslint.config(
  { ignores: ["node_modules/**", "coverage/**", "dist/**", "data/**", ".data/**"] },
  ...tseslint.configs.recommended,
  {
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "@typescript-eslint/consistent-type-imports": "error",
      "no-console": "off"
    }
  },
  {
    // every store connection goes through the modules that give it error handling and a place in
    // the dependency record: a pg client without an 'error' listener crashes the process when
    // its backend is terminated, an ioredis one prints raw errors by the thousand
    files: ["src/**/*.ts"],
    ignores: ["src/health/redisHealth.ts", "src/db/pgSql.ts"],
    rules: {
      "no-restricted-syntax": ["error",
        { selector: "NewExpression[callee.name='Redis']", message: "open Redis clients with openRedis (src/health/redisHealth.ts)" },
        { selector: "NewExpression[callee.name='Cluster']", message: "open Redis Cluster clients with openRedis and a redis+cluster:// URL (src/health/redisHealth.ts)" },
        { selector: "CallExpression[callee.property.name='duplicate']", message: "duplicate Redis clients with duplicateRedis (src/health/redisHealth.ts)" },
        { selector: "NewExpression[callee.object.name='pg']", message: "open Postgres with makePgSql (src/db/pgSql.ts)" }]
    }
  },
  {
    files: pureFolders,
    rules: {
      "no-restricted-imports": ["error", {
        patterns: [{ group: ioModules, message: "pure code must not do I/O: move it behind a port" }]
      }],
      "no-restricted-globals": ["error",
        { name: "Date", message: "time reaches pure code only as recorded input" },
        { name: "setTimeout", message: "pure code must not schedule" },
        { name: "process", message: "pure code must not read the environment" }]
    }
  }
)
