# botfleet node image: compiled JavaScript (npm run build), production dependencies only, run as
# the unprivileged `node` user. docs/operations.md shows how to run it (compose.yaml: two nodes).

# 1. build: the lockfile's exact dependencies, then tsc into dist/
FROM node:20-bookworm-slim AS build
WORKDIR /app
# scripts/build.js is npm's prepare step too: before src/ is here it skips (the layer of the
# dependencies stays cached while only sources change)
COPY package.json package-lock.json ./
COPY scripts ./scripts
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# 2. the runtime's dependencies alone (no compiler, no test tools)
FROM node:20-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
COPY scripts ./scripts
RUN npm ci --omit=dev --no-audit --no-fund

# 3. the image: dist/, the migrations (applied by each node at start), package.json (the version)
FROM node:20-bookworm-slim
ENV NODE_ENV=production \
    HTTP_PORT=8080 \
    DATA_DIR=/var/lib/botfleet
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY sql ./sql
COPY schemas ./schemas
RUN mkdir -p /var/lib/botfleet && chown node:node /var/lib/botfleet
USER node
EXPOSE 8080
# /ready: 200 while the node's stores answer and it is not draining (docs/observability.md)
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.HTTP_PORT || 8080) + '/ready').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# SIGTERM drains: bots finish their input, hand their leases over, projections catch up
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "dist/cli/bin.js"]
CMD ["run", "--no-sandbox"]
