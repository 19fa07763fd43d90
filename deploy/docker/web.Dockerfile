# syntax=docker/dockerfile:1
# web: the Next.js browser app; proxies /api, /v1 and /docs to the gateway (GATEWAY_URL).
# Build from the repository root:
#   docker build -f deploy/docker/web.Dockerfile -t llm-stack/web .
# The context is filtered by web.Dockerfile.dockerignore (BuildKit) to web/'s sources only.

ARG NODE_IMAGE=node:24.11.1-bookworm-slim

# ---------------------------------------------------------------- build: next build
FROM ${NODE_IMAGE} AS build
ENV NEXT_TELEMETRY_DISABLED=1
WORKDIR /src
COPY web/package.json web/package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error
COPY web/ ./
RUN npm run build && rm -rf .next/cache

# ---------------------------------------------------------------- production dependencies only
FROM ${NODE_IMAGE} AS deps
WORKDIR /src
COPY web/package.json web/package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund --loglevel=error

# ---------------------------------------------------------------- runtime
FROM ${NODE_IMAGE}
RUN groupadd --system --gid 10001 app \
 && useradd --system --uid 10001 --gid app --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin app
WORKDIR /app
COPY --from=deps /src/node_modules ./node_modules
COPY --from=build /src/.next ./.next
# server.mjs starts Next's handler; next.config.ts (with lib/env.ts, which it imports) is read
# again at start to check GATEWAY_URL.
COPY web/package.json web/server.mjs web/next.config.ts web/tsconfig.json ./
COPY web/lib/env.ts ./lib/env.ts
# Next writes its cache under .next/cache: the only writable path needed (an emptyDir or
# tmpfs there keeps the root filesystem read-only).
ENV NODE_ENV=production \
    NEXT_TELEMETRY_DISABLED=1 \
    PORT=3000 \
    GATEWAY_URL=http://gateway:4000
USER 10001:10001
EXPOSE 3000
# A static page: "/" asks the gateway for the stack's status on every request.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch(`http://127.0.0.1:${process.env.PORT}/sign-in`).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "server.mjs"]
