import type { EpochMs } from '@candlestream/core';
import type { Logger } from '@candlestream/logger';
import type { HealthReport, Metrics } from '@candlestream/runtime';
import { LATENCY_BUCKETS_S } from '@candlestream/runtime';
import express from 'express';
import helmet from 'helmet';
import type { BackfillDesk } from './backfills.js';
import type { ReplayDesk } from './replays.js';
import type { BarService } from './bars.js';
import type { Authenticator } from './http/auth.js';
import { ConcurrencyGate, limitConcurrency } from './http/concurrency.js';
import { requireAuth } from './http/auth.js';
import type { RateLimiter } from './http/rate-limit.js';
import { limitFailedAuth, rateLimit } from './http/rate-limit.js';
import { backfillsRouter } from './routes/backfills.js';
import { replaysRouter } from './routes/replays.js';
import { errorHandler, notFound } from './routes/errors.js';
import { ohlcvRouter } from './routes/ohlcv.js';
import { docsPage, OPENAPI } from './routes/openapi.js';
import { udfRouter } from './routes/udf.js';
import type { SymbolRegistry } from './symbols.js';

export interface AppDeps {
  bars: BarService;
  symbols: SymbolRegistry;
  now: () => EpochMs;
  /** Backfills (POST/GET /backfills, history misses); without it those routes are absent. */
  backfills?: BackfillDesk | undefined;
  /** Replay sessions (POST/GET /replays); without it those routes are absent. */
  replays?: ReplayDesk | undefined;
  auth: Authenticator;
  limiter: RateLimiter;
  /** Bounds history requests in flight, per client and in total (default: its own constants). */
  history?: ConcurrencyGate | undefined;
  /** TRUST_PROXY: proxies whose X-Forwarded-For names the client; none when unset. */
  trustProxy?: readonly string[] | undefined;
  health: () => HealthReport;
  metrics: Metrics;
  logger: Logger;
  /** The built page (packages/web/dist), when it exists. */
  webDir?: string | undefined;
  chartingLibraryDir?: string | undefined;
}

/** A backfill request is three fields; anything much bigger is not one. */
const MAX_BODY_BYTES = 4 * 1_024;

/** Requests slower than this are logged at info; the rest at debug. */
const SLOW_REQUEST_MS = 500;

/** The HTTP API. Public: /health, /metrics, /openapi.json, /docs. Behind auth and limits: data. */
export function createApp(deps: AppDeps): express.Express {
  const app = express();
  app.disable('x-powered-by');
  // Security headers (helmet's defaults: CSP 'self', nosniff, frame and referrer policies), with
  // two changes: the API is made to be read from other origins (a TradingView page elsewhere),
  // and the platform serves plain HTTP by default, where upgrading requests would break the page.
  app.use(
    helmet({
      crossOriginResourcePolicy: { policy: 'cross-origin' },
      contentSecurityPolicy: { directives: { upgradeInsecureRequests: null } },
    }),
  );
  // `req.ip` (the rate limit's key without a token) reads X-Forwarded-For only from the proxies
  // TRUST_PROXY names: trusted from anyone, a rotating header would be a fresh budget each time.
  app.set('trust proxy', deps.trustProxy ? [...deps.trustProxy] : false);
  const log = deps.logger.child({ component: 'http' });
  const requests = deps.metrics.counter('http_requests_total', 'HTTP requests answered', {
    labels: ['route', 'status'],
  });
  const seconds = deps.metrics.histogram(
    'http_request_duration_seconds',
    'time to answer, per route',
    LATENCY_BUCKETS_S,
    { labels: ['route'] },
  );

  app.use((req, res, next) => {
    const started = performance.now();
    res.on('finish', () => {
      const durationMs = performance.now() - started;
      const route = req.path.startsWith('/udf/')
        ? req.path
        : req.path.split('/').slice(0, 2).join('/');
      requests.inc(1, { route, status: String(res.statusCode) });
      seconds.observe(durationMs / 1_000, { route });
      const fields = {
        method: req.method,
        path: req.path,
        status: res.statusCode,
        durationMs: Math.round(durationMs),
      };
      if (durationMs > SLOW_REQUEST_MS || res.statusCode >= 500) log.info('request', fields);
      else log.debug('request', fields);
    });
    next();
  });

  app.get('/health', (_req, res) => {
    const report = deps.health();
    res.status(report.status === 'down' ? 503 : 200).json(report);
  });
  app.get('/metrics', (_req, res, next) => {
    deps.metrics.scrape().then((text) => res.type(deps.metrics.contentType).send(text), next);
  });
  app.get('/openapi.json', (_req, res) => {
    res.json(OPENAPI);
  });
  app.get('/docs', (_req, res) => {
    res.type('html').send(docsPage());
  });

  app.use(
    ['/ohlcv', '/udf', '/backfills', '/replays'],
    requireAuth(deps.auth),
    limitFailedAuth(deps.limiter),
    rateLimit(deps.limiter),
  );
  // History is the costly work (storage reads, big answers): bounded so a burst from one client
  // neither grows memory without end nor starves the others.
  app.use(['/ohlcv', '/udf/history'], limitConcurrency(deps.history ?? new ConcurrencyGate()));
  app.use(ohlcvRouter(deps), udfRouter(deps));
  if (deps.backfills) {
    app.use('/backfills', express.json({ limit: MAX_BODY_BYTES }));
    app.use(backfillsRouter({ backfills: deps.backfills, symbols: deps.symbols }));
  }
  if (deps.replays) {
    app.use('/replays', express.json({ limit: MAX_BODY_BYTES }));
    app.use(replaysRouter({ replays: deps.replays, symbols: deps.symbols, now: deps.now }));
  }
  // The chart page (built by `pnpm install`) and, if one was placed there, a licensed Charting Library.
  if (deps.webDir) app.use(express.static(deps.webDir, { index: 'index.html' }));
  else {
    app.get('/', (_req, res) => {
      res
        .status(503)
        .type('text/plain')
        .send(
          'The chart page is not built yet: run pnpm install (or pnpm --filter @candlestream/web build).\n',
        );
    });
  }
  if (deps.chartingLibraryDir)
    app.use('/charting_library', express.static(deps.chartingLibraryDir));
  app.use(notFound);
  app.use(errorHandler(deps.logger));
  return app;
}
