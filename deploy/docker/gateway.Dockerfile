# syntax=docker/dockerfile:1
# gateway: accounts, keys, limits and the streaming proxy (Fastify, Node 24).
# Build from the repository root:
#   docker build -f deploy/docker/gateway.Dockerfile -t llm-stack/gateway .
# The context is filtered by gateway.Dockerfile.dockerignore (BuildKit) to gateway/ only.

ARG NODE_IMAGE=node:24.11.1-bookworm-slim

# ---------------------------------------------------------------- build: compile TypeScript
FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY gateway/package.json gateway/package-lock.json ./
# better-sqlite3 ships a prebuilt linux-x64 binary: no install scripts, no compiler.
RUN npm ci --no-audit --no-fund --loglevel=error
COPY gateway/tsconfig.json gateway/tsconfig.build.json ./
COPY gateway/src ./src
RUN npm run build

# ---------------------------------------------------------------- production dependencies only
FROM ${NODE_IMAGE} AS deps
WORKDIR /src
COPY gateway/package.json gateway/package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund --loglevel=error

# ---------------------------------------------------------------- runtime
FROM ${NODE_IMAGE}
RUN groupadd --system --gid 10001 app \
 && useradd --system --uid 10001 --gid app --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin app \
 && mkdir -p /data && chown app:app /data
WORKDIR /app
COPY --from=deps /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY gateway/package.json ./
# SQLite (when DATABASE_URL is unset) lives in /data: mount a volume there. With PostgreSQL
# nothing is written to disk and the root filesystem can be read-only.
ENV NODE_ENV=production \
    APP_ENV=production \
    GATEWAY_HOST=0.0.0.0 \
    GATEWAY_PORT=4000 \
    DATABASE_PATH=/data/gateway.sqlite
USER 10001:10001
EXPOSE 4000
# The admin command line: docker compose exec gateway node dist/cli.js <command>.
# Liveness only (/health): /health/ready also needs an llm-server, which is not this
# container's health.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch(`http://127.0.0.1:${process.env.GATEWAY_PORT}/health`).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
STOPSIGNAL SIGTERM
# The node flags of `npm start` (package.json): a 4 MB young generation keeps each garbage
# collection pause near 1 ms (gateway/README.md, "Hot path").
ENTRYPOINT ["node", "--max-semi-space-size=4", "dist/server.js"]
