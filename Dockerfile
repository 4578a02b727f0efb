# One image per deployable, from one build:
#   docker build --target service  -t arc-service:dev  .
#   docker build --target sidecar  -t arc-sidecar:dev  .
#   docker build --target operator -t arc-operator:dev .
# Build arguments VERSION and REVISION fill the OCI labels (test/e2e/kind.sh sets them).
#
# Every image is compiled from the sources in the build context (.dockerignore keeps dist/,
# node_modules/ and tests out of it): no stale file from a developer's tree can get in, which is
# how the broken pool once reached production. `npm test` lists each image's files
# (hack/image-files.ts, which reads this file) and fails on a forbidden module; `npm run
# images:build` scans the built images themselves (hack/image-scan.ts).
#
# No `# syntax=` line: it would make BuildKit pull a frontend image, and machines without a
# registry could not build at all. Builds with BuildKit and with the legacy builder.

# The base of every image. `npm run images:build` passes a local one (arc-node:24, made from
# Debian packages and our Node 24 binary) where no registry can be reached.
ARG NODE_IMAGE=node:24-bookworm-slim
# The image the build stages run `npm ci` in; the runtime images never derive from it. images:build
# passes the base plus the CA bundle this machine trusts (npm's cafile), so the CA stays out of
# the images we ship.
ARG NODE_BUILD_IMAGE=${NODE_IMAGE}

# ---- build: all dependencies, tsc -b on a clean tree ----
FROM ${NODE_BUILD_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.base.json tsconfig.build.json ./
COPY common/package.json common/
COPY service/package.json service/
COPY sidecar/package.json sidecar/
COPY operator/package.json operator/
RUN npm ci --no-audit --no-fund
COPY common/ common/
COPY service/ service/
COPY sidecar/ sidecar/
COPY operator/ operator/
RUN npx tsc -b tsconfig.build.json

# ---- production dependencies of one workspace (no dev dependencies, no other workspace's) ----
FROM ${NODE_BUILD_IMAGE} AS prod-deps
WORKDIR /app
COPY package.json package-lock.json ./
COPY common/package.json common/
COPY service/package.json service/
COPY sidecar/package.json sidecar/
COPY operator/package.json operator/

FROM prod-deps AS service-deps
RUN npm ci --omit=dev --no-audit --no-fund --workspace @arcops/service

FROM prod-deps AS sidecar-deps
RUN npm ci --omit=dev --no-audit --no-fund --workspace @arcops/sidecar

FROM prod-deps AS operator-deps
RUN npm ci --omit=dev --no-audit --no-fund --workspace @arcops/operator

# ---- runtime base: non-root, read-only root filesystem (only /tmp is written) ----
FROM ${NODE_IMAGE} AS runtime
ARG VERSION=0.0.0-dev
ARG REVISION=unknown
LABEL org.opencontainers.image.vendor="arcops" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"
ENV NODE_ENV=production \
    HOME=/tmp \
    NPM_CONFIG_UPDATE_NOTIFIER=false
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/common/package.json common/
COPY --from=build /app/common/dist common/dist
USER 65532:65532

# ---- service: the query API (port 8000) ----
FROM runtime AS service
LABEL org.opencontainers.image.title="arc-service" \
      org.opencontainers.image.description="Arc-compatible query API over a fixed DuckDB connection pool"
COPY --from=service-deps /app/node_modules node_modules
COPY --from=build /app/service/package.json service/
COPY --from=build /app/service/dist service/dist
WORKDIR /app/service
EXPOSE 8000
ENTRYPOINT ["node", "dist/main.js"]

# ---- sidecar: the pool-health probe (port 8081) ----
FROM runtime AS sidecar
LABEL org.opencontainers.image.title="arc-sidecar" \
      org.opencontainers.image.description="Pool-health probe beside the Arc query service; writes the arcops.dev/PoolHealthy pod condition"
COPY --from=sidecar-deps /app/node_modules node_modules
COPY --from=build /app/sidecar/package.json sidecar/
COPY --from=build /app/sidecar/dist sidecar/dist
WORKDIR /app/sidecar
EXPOSE 8081
# RSS is what a sidecar costs, in every pod. A small young generation (the probe allocates
# little) and V8's lite mode (no optimizing compilers: their code pages and compiled code stay
# out of memory; the probe loop stays under 1 % of a core): ~73 MB -> ~57 MB VmRSS
# (docs/benchmarks.md). Lite mode also turns WebAssembly off, so the global fetch (undici)
# fails here: the sidecar uses node:http. --lite-mode is not allowed in NODE_OPTIONS, hence the
# command line; bench/sidecar.ts reads this ENTRYPOINT to measure the sidecar as the image runs it.
# --use-openssl-ca: the sidecar's only TLS peer is the API server, trusted through the
# ServiceAccount's ca.crt alone; with Node's bundled store, loading node:https parses its ~120
# root certificates on a helper thread all the same (~1.6 MB of RSS, never used).
# --no-node-snapshot: Node bootstraps by running its internal JavaScript instead of
# deserializing its built-in startup snapshot, whose heap and pages of the binary then stay
# resident: ~4.5 MB less RSS for ~40 ms more at startup.
ENTRYPOINT ["node", "--max-semi-space-size=1", "--lite-mode", "--use-openssl-ca", "--no-node-snapshot", "dist/main.js"]

# ---- operator: the ArcDeployment controller (metrics and probes on 8080) ----
FROM runtime AS operator
LABEL org.opencontainers.image.title="arc-operator" \
      org.opencontainers.image.description="Controller of the ArcDeployment custom resource"
COPY --from=operator-deps /app/node_modules node_modules
COPY --from=build /app/operator/package.json operator/
COPY --from=build /app/operator/dist operator/dist
WORKDIR /app/operator
# A small young generation: the operator's garbage is short-lived (JSON of API responses) and
# RSS is what it costs at rest. --expose-gc lets the operator hand the pages V8 keeps pooled
# back to the system once it is idle after a busy period (operator/src/memory.ts; ADR 0009).
ENV NODE_OPTIONS="--max-semi-space-size=1 --expose-gc"
# A fixed mmap threshold: glibc otherwise raises it after the first large free, and the megabyte
# buffers of list pages then land in the malloc heap, which keeps them resident when freed
# (~35 MB at 1000 ArcDeployments). Fixed, they are mapped and unmapped on their own.
ENV GLIBC_TUNABLES="glibc.malloc.mmap_threshold=131072"
EXPOSE 8080
ENTRYPOINT ["node", "dist/main.js"]
