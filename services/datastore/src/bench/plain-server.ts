/**
 * The benchmark's baseline: a plain express handler answering /ohlcv with one direct query and
 * no validation, cache, live merge or limits. Run as its own process by datastore.bench.ts.
 */
import express from 'express';
import pg from 'pg';

// Bench scaffolding, not a service: its settings come from the bench, not from config.ts.
// eslint-disable-next-line no-restricted-properties
const env = process.env;
const pool = new pg.Pool({ connectionString: env['DATABASE_URL'], max: 8 });
const app = express();
app.get('/ohlcv', async (req, res) => {
  const { symbol, interval, startDate, endDate } = req.query as Record<string, string>;
  const { rows } = await pool.query<{
    t: number;
    open: number;
    high: number;
    low: number;
    close: number;
    volume: number;
  }>(
    // Epoch ms, as the repository reads them, not pg's slow timestamptz-to-Date parsing.
    `SELECT (extract(epoch FROM bucket) * 1000)::float8 AS t, open, high, low, close, volume FROM ohlcv_${interval === '1h' ? '1h' : '1m'}
     WHERE symbol = $1 AND bucket >= $2 AND bucket < $3 ORDER BY bucket`,
    [symbol, startDate, endDate],
  );
  res.json({
    symbol,
    interval,
    bars: rows.map((r) => ({
      time: new Date(r.t).toISOString(),
      open: r.open,
      high: r.high,
      low: r.low,
      close: r.close,
      volume: r.volume,
    })),
  });
});
const server = app.listen(Number(env['PORT'] ?? 0), '127.0.0.1', () => {
  const address = server.address();
  process.stdout.write(
    `${JSON.stringify({ msg: 'listening', port: typeof address === 'object' && address ? address.port : 0 })}\n`,
  );
});
process.on('SIGTERM', () => {
  server.close();
  void pool.end();
});
