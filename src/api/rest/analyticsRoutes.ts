import type { FastifyPluginAsync } from "fastify"
import type { QueryResult, Statement } from "../../db/sql.js"
import type { ApiDeps } from "./apiContext.js"
import { botVisible, readForBot, readAsOwner } from "./apiContext.js"
import { ApiError } from "./apiErrors.js"
import { BotIdParams, errors } from "./schemas.js"

/*
 * A bot's numbers over a range of days (UTC), from the projections: messages per day, active
 * users per day and per ISO week, new vs returning users, reply latency percentiles, and retention
 * by the week users were first seen. Read under row-level security like every owner route.
 */

const DAY = /^\d{4}-\d{2}-\d{2}$/
const MAX_DAYS = 400

const range = (q: { from?: string; to?: string }): { from: string; to: string } => {
  const to = q.to ?? new Date().toISOString().slice(0, 10)
  const toMs = Date.parse(`${to}T00:00:00Z`)
  const from = q.from ?? new Date(toMs - 29 * 86_400_000).toISOString().slice(0, 10)
  const fromMs = Date.parse(`${from}T00:00:00Z`)
  if (!Number.isFinite(toMs) || !Number.isFinite(fromMs) || !DAY.test(from) || !DAY.test(to)) {
    throw new ApiError({ status: 400, code: "invalid_request", detail: "from, to: expected dates as YYYY-MM-DD" })
  }
  if (fromMs > toMs) throw new ApiError({ status: 400, code: "invalid_request", detail: "from is after to" })
  if ((toMs - fromMs) / 86_400_000 >= MAX_DAYS) throw new ApiError({ status: 400, code: "invalid_request", detail: `at most ${MAX_DAYS} days at once` })
  return { from, to }
}

const Analytics = {
  type: "object",
  properties: {
    botId: { type: "string" },
    from: { type: "string" },
    to: { type: "string" },
    days: {
      type: "array",
      items: {
        type: "object",
        properties: {
          day: { type: "string" },
          messagesIn: { type: "integer" },
          messagesOut: { type: "integer" },
          activeUsers: { type: "integer" },
          newUsers: { type: "integer" },
          returningUsers: { type: "integer" }
        }
      }
    },
    weeklyActiveUsers: { type: "array", items: { type: "object", properties: { week: { type: "string" }, users: { type: "integer" } } } },
    replyLatencyMs: {
      type: "object",
      properties: { replies: { type: "integer" }, p50: { type: ["number", "null"] }, p90: { type: ["number", "null"] }, p99: { type: ["number", "null"] } }
    },
    retention: {
      type: "array",
      description: "per cohort (ISO week users were first seen): its size, and how many of them were active 0, 1, 2... weeks later",
      items: { type: "object", properties: { cohortWeek: { type: "string" }, users: { type: "integer" }, activeByWeek: { type: "array", items: { type: "integer" } } } }
    }
  }
} as const

/**
 * The four statements of one bot's analytics from `from` to `to` (UTC dates), independent of each
 * other, so they go to the database together; `analyticsOf` shapes their results. Whoever runs
 * them decides as whom (the API: as the owner, under row-level security; the bench: directly, as
 * its baseline).
 */
export const analyticsStatements = (botId: string, from: string, to: string): ReadonlyArray<Statement> => [
  {
    name: "bf_api_days",
    text: `SELECT day::text, messages_in, messages_out, active_users, new_users FROM daily_stats
            WHERE bot_id = $1 AND day BETWEEN $2::date AND $3::date ORDER BY day`,
    params: [botId, from, to]
  },
  {
    name: "bf_api_weeks",
    text: `SELECT date_trunc('week', day)::date::text AS week, count(DISTINCT user_id)::int AS users FROM daily_active_users
            WHERE bot_id = $1 AND day BETWEEN $2::date AND $3::date GROUP BY 1 ORDER BY 1`,
    params: [botId, from, to]
  },
  // a reply's latency: from the chat's last message in at or before it (one pass over the range's
  // messages with a window, not a lookup per reply; a day before `from` is read so the range's
  // first replies find what they answer)
  {
    name: "bf_api_latency",
    text: `SELECT count(*)::int AS replies,
                  percentile_cont(ARRAY[0.5, 0.9, 0.99]) WITHIN GROUP (ORDER BY ms) AS p
             FROM (
               SELECT direction, delivery_state, at,
                      extract(epoch FROM (at - max(at) FILTER (WHERE direction = 'in') OVER (PARTITION BY chat_id ORDER BY at, version))) * 1000 AS ms
                 FROM messages
                WHERE bot_id = $1 AND at >= $2::date - 1 AND at < $3::date + 1) x
            WHERE direction = 'out' AND delivery_state = 'sent' AND ms IS NOT NULL AND at >= $2::date`,
    params: [botId, from, to]
  },
  {
    name: "bf_api_cohorts",
    text: `WITH c AS (SELECT user_id, date_trunc('week', day)::date AS cohort FROM stats_first_seen
                       WHERE bot_id = $1 AND day BETWEEN $2::date AND $3::date),
                a AS (SELECT DISTINCT user_id, date_trunc('week', day)::date AS wk FROM daily_active_users
                       WHERE bot_id = $1 AND day BETWEEN $2::date AND $3::date),
                n AS (SELECT cohort, count(*)::int AS users FROM c GROUP BY cohort),
                k AS (SELECT c.cohort, (a.wk - c.cohort) / 7 AS week, count(*)::int AS active
                        FROM c JOIN a USING (user_id) WHERE a.wk >= c.cohort GROUP BY 1, 2)
           SELECT n.cohort::text, n.users, array_agg(k.week ORDER BY k.week) AS offsets, array_agg(k.active ORDER BY k.week) AS counts
             FROM n LEFT JOIN k USING (cohort) GROUP BY n.cohort, n.users ORDER BY n.cohort`,
    params: [botId, from, to]
  }
]

type DayRow = { day: string; messages_in: number; messages_out: number; active_users: number; new_users: number }
type LatencyRow = { replies: number; p: Array<number | null> | null }
type CohortRow = { cohort: string; users: number; offsets: Array<number> | null; counts: Array<number> | null }

/** The analytics answer from the results of `analyticsStatements`, in their order. */
export const analyticsOf = (botId: string, from: string, to: string, results: ReadonlyArray<QueryResult>) => {
  const [days, weeks, latency, cohorts] = results as unknown as readonly [QueryResult<DayRow>, QueryResult<{ week: string; users: number }>, QueryResult<LatencyRow>, QueryResult<CohortRow>]
  const p = latency.rows[0]?.p ?? null
  const round = (v: number | null | undefined) => (v === null || v === undefined ? null : Math.round(Number(v) * 10) / 10)
  return {
    botId,
    from,
    to,
    days: days.rows.map((d) => ({
      day: d.day,
      messagesIn: d.messages_in,
      messagesOut: d.messages_out,
      activeUsers: d.active_users,
      newUsers: d.new_users,
      returningUsers: Math.max(0, d.active_users - d.new_users)
    })),
    weeklyActiveUsers: weeks.rows,
    replyLatencyMs: { replies: latency.rows[0]?.replies ?? 0, p50: round(p?.[0]), p90: round(p?.[1]), p99: round(p?.[2]) },
    retention: cohorts.rows.map((c) => {
      const byWeek: Array<number> = []
      ;(c.offsets ?? []).forEach((w, i) => {
        if (w === null) return
        while (byWeek.length < w) byWeek.push(0)
        byWeek[w] = c.counts![i]!
      })
      return { cohortWeek: c.cohort, users: c.users, activeByWeek: byWeek }
    })
  }
}

export const analyticsRoutes = (deps: ApiDeps): FastifyPluginAsync => async (app) => {
  app.get<{ Params: { botId: string }; Querystring: { from?: string; to?: string } }>("/bots/:botId/analytics", {
    config: { access: "read" },
    schema: {
      tags: ["analytics"],
      summary: "A bot's numbers per day from `from` to `to` (UTC dates, default the last 30 days)",
      params: BotIdParams,
      querystring: { type: "object", properties: { from: { type: "string", format: "date" }, to: { type: "string", format: "date" } } },
      response: { 200: Analytics, ...errors }
    }
  }, async (req) => {
    const { from, to } = range(req.query)
    return readForBot(deps, req, req.params.botId, async (botId) => {
      const [visible, ...results] = await readAsOwner(deps, req, [botVisible(botId), ...analyticsStatements(botId, from, to)])
      return visible!.rows.length === 0 ? null : analyticsOf(botId, from, to, results)
    })
  })
}
