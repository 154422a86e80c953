# syntax=docker/dockerfile:1
# The winchester image: the `winchester` CLI (trigger-worker, pipeline-worker, db upgrade, …) as entrypoint.
#   docker build -t winchester .
#   docker run --rm winchester --help
# The Helm chart (helm/winchester) runs it as uid 10001 with a read-only root file system.

# One pinned Node.js for both stages, so the native-free node_modules built in the first runs in the second.
ARG NODE_IMAGE=node:20.20.2-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /src
# The lock file first: the dependency layer is rebuilt only when the dependencies change.
# --ignore-scripts: `prepare` compiles src/, which is not copied yet; the build step below does it.
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build \
  && npm prune --omit=dev --ignore-scripts --no-audit --no-fund

FROM ${NODE_IMAGE}
ENV NODE_ENV=production \
    WINCHESTER_CONFIG=/etc/winchester/winchester.yaml
# A fixed uid/gid, so Kubernetes' runAsNonRoot can verify it and volumes can be owned by it.
RUN groupadd --system --gid 10001 winchester \
  && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
     --shell /usr/sbin/nologin winchester
WORKDIR /app
# Everything stays owned by root: the process cannot change its own code.
COPY --from=build /src/package.json ./package.json
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY bin ./bin
COPY migrations ./migrations
COPY schemas ./schemas
COPY src/notigen/templates ./src/notigen/templates
# The StackTach usage audit as the default configuration; mount your own over /etc/winchester.
COPY etc /etc/winchester
USER 10001:10001
# /metrics, /healthz and /readyz (metrics.port).
EXPOSE 9464
ENTRYPOINT ["node", "/app/bin/winchester.js"]
CMD ["--help"]
