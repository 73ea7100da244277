# One image for every Candlestream process (the services, the broker, migrations). Services run
# from TypeScript source with tsx, exactly as `pnpm start` runs them, so there is no build step
# between the code and what runs; the chart page is built by the install's postinstall.
ARG NODE_IMAGE=node:20.19-bookworm-slim

FROM ${NODE_IMAGE} AS deps
WORKDIR /app
RUN npm install -g pnpm@10.34.9 --no-fund --no-audit
COPY pnpm-lock.yaml pnpm-workspace.yaml package.json .npmrc ./
COPY packages/ packages/
COPY services/ services/
# Sources are needed for the workspace links and the page build; the lockfile pins everything.
RUN pnpm install --frozen-lockfile

FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY --from=deps --chown=node:node /app /app
COPY --chown=node:node migrations/ migrations/
COPY --chown=node:node tsconfig.base.json tsconfig.json ./
# The official image's unprivileged user.
USER node
EXPOSE 3000 3001 3002
# Each compose service sets its command (scripts/services.ts keeps them equal to pnpm start's).
CMD ["node", "--import", "tsx", "services/datastore/src/main.ts"]
