# syntax=docker/dockerfile:1
#
# gatehouse: one image, two processes (or both in one).
#   docker build -t gatehouse:0.1.0 .
#   docker run ... gatehouse:0.1.0 authz        the authz service (port 50051)
#   docker run ... gatehouse:0.1.0 gateway      the gateway (port 8080)
#   docker run ... gatehouse:0.1.0 all-in-one   both in one process (8080, and 50051 unless allInOne.serveRpc: false)
# and the secret tools: generate-jwks, hash-secret, hash-password.
#
# Stages: `build` compiles TypeScript with the dev dependencies; `deps` installs
# the production dependencies only; the final stage copies the two and nothing
# else, so typescript, vitest, tsx and buf never reach it. It runs as a numeric
# non-root user (Kubernetes' runAsNonRoot can only verify a numeric USER) and
# writes nothing at run time, so it runs with a read-only root filesystem.
# Configuration and secrets are mounted at run time (deploy/README.md); none
# is copied in, and .dockerignore keeps them out of the build context.
#
# One Node.js release for all stages: node_modules built in one runs in the other.

FROM node:20.20.2-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# Scripts are not needed to compile (tsc is JavaScript; its native build comes
# as an optional dependency of the locked platform), and none runs unasked.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY gen ./gen
COPY contract ./contract
COPY startup ./startup
COPY services ./services
COPY gateway ./gateway
COPY all-in-one ./all-in-one
COPY cli ./cli
COPY scripts ./scripts
RUN npm run build

FROM node:20.20.2-bookworm-slim AS deps
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && npm cache clean --force

FROM node:20.20.2-bookworm-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# "type": "module": without it node would read dist/ as CommonJS.
COPY package.json ./
COPY bin/gatehouse.mjs ./bin/gatehouse.mjs
# The uid and gid the manifests run as (deploy/base: runAsUser 10001). No
# home directory, no shell login: the processes need neither.
USER 10001:10001
EXPOSE 50051 8080
# node is PID 1 and handles SIGTERM (drain) and SIGHUP (reload) itself; it
# starts no child processes, so no init is needed to reap them.
ENTRYPOINT ["node", "--enable-source-maps", "/app/bin/gatehouse.mjs"]
CMD ["authz"]
