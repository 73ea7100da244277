# One image for every Candlestream process (the services and migrations). The build stage
# compiles the workspace (`pnpm build`: tsc per package into dist/, Vite for the chart page) and
# deploys each process with `pnpm deploy --prod`: a self-contained folder of its dist/ and its
# production node_modules, workspace packages included as their dist/ only. The runtime stage
# holds those folders and migrations/ at their workspace paths and runs plain node on them: no
# tsx, no TypeScript sources, no dev dependencies. Commands: scripts/services.ts.
ARG NODE_IMAGE=node:20.19-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /src
RUN npm install -g pnpm@10.34.9 --no-fund --no-audit
COPY pnpm-lock.yaml pnpm-workspace.yaml package.json .npmrc tsconfig.base.json ./
COPY packages/ packages/
COPY services/ services/
RUN pnpm install --frozen-lockfile
RUN pnpm build
# --legacy: deploy without inject-workspace-packages (pnpm 10), which would change how every
# workspace package is linked in development; --ignore-scripts: no production dependency needs
# an install script, and the root postinstall (the page build) has already run.
RUN for target in @candlestream/db=packages/db \
      @candlestream/fixed-consumer=services/fixed-consumer \
      @candlestream/coordinator=services/coordinator \
      @candlestream/dynamic-consumer=services/dynamic-consumer \
      @candlestream/producer=services/producer \
      @candlestream/simulator=services/simulator \
      @candlestream/datastore=services/datastore; do \
      pnpm --filter "${target%%=*}" --prod deploy --legacy --ignore-scripts "/app/${target#*=}"; \
    done

FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production
WORKDIR /app
# Owned by root and only readable by the service user: nothing here is written at run time.
COPY --from=build /app/ ./
# packages/db/dist/migrate.js finds them at ../../../migrations, as in the workspace.
COPY migrations/ migrations/
# The official image's unprivileged user.
USER node
EXPOSE 3000 3001 3002 3003 3004 3005
# Each compose service sets its command (scripts/services.ts: compiledCommandOf).
CMD ["node", "--conditions=compiled", "services/datastore/dist/main.js"]
