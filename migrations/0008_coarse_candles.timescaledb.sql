-- migrate:no-transaction
-- Coarse candles (docs/STORAGE.md, "Hours and days where the source has no minutes"): a source
-- that keeps only hourly or daily candles for old times (CryptoCompare: about 7 days of minutes,
-- years of hours) still gives 1h, 4h and 1d bars there. Such a candle is one bars_1m row that
-- covers its whole hour or day (span_min 60 or 1440), written only where the period has no finer
-- row; a finer row (a trade's minute, a 1-minute candle) removes it. Each relation reads only the
-- rows it can answer: 1m, 5m and 15m the minutes, 1h and 4h also the hours, 1d everything.
--
-- The hierarchy changes to fit: 5m on the minutes, 15m on 5m, 1h on bars_1m (minutes and
-- hours), 4h on 1h, 1d on bars_1m. A continuous aggregate cannot change its query, so all five
-- are created again WITH DATA (a new one materializes its whole history at once; left empty,
-- buckets older than the refresh policies reach would read as missing). Every statement is safe
-- to re-run after a failure part-way.

ALTER TABLE bars_1m
  ADD COLUMN IF NOT EXISTS span_min smallint NOT NULL DEFAULT 1 CHECK (span_min IN (1, 60, 1440));

CREATE OR REPLACE VIEW ohlcv_1m AS
SELECT bucket, symbol, open, high, low, close, volume FROM bars_1m WHERE span_min = 1;

DROP MATERIALIZED VIEW IF EXISTS ohlcv_1d;
DROP MATERIALIZED VIEW IF EXISTS ohlcv_4h;
DROP MATERIALIZED VIEW IF EXISTS ohlcv_1h;
DROP MATERIALIZED VIEW IF EXISTS ohlcv_15m;
DROP MATERIALIZED VIEW IF EXISTS ohlcv_5m;

CREATE MATERIALIZED VIEW IF NOT EXISTS ohlcv_5m
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket(INTERVAL '5 minutes', bucket) AS bucket,
       symbol,
       first(open, bucket) AS open,
       max(high) AS high,
       min(low) AS low,
       last(close, bucket) AS close,
       sum(volume) AS volume
FROM bars_1m
WHERE span_min = 1
GROUP BY 1, 2
WITH DATA;

SELECT add_continuous_aggregate_policy('ohlcv_5m',
  start_offset => INTERVAL '1 day',
  end_offset => INTERVAL '5 minutes',
  schedule_interval => INTERVAL '1 minute',
  if_not_exists => true);

CREATE MATERIALIZED VIEW IF NOT EXISTS ohlcv_15m
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket(INTERVAL '15 minutes', bucket) AS bucket,
       symbol,
       first(open, bucket) AS open,
       max(high) AS high,
       min(low) AS low,
       last(close, bucket) AS close,
       sum(volume) AS volume
FROM ohlcv_5m
GROUP BY 1, 2
WITH DATA;

SELECT add_continuous_aggregate_policy('ohlcv_15m',
  start_offset => INTERVAL '2 days',
  end_offset => INTERVAL '15 minutes',
  schedule_interval => INTERVAL '5 minutes',
  if_not_exists => true);

CREATE MATERIALIZED VIEW IF NOT EXISTS ohlcv_1h
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket(INTERVAL '1 hour', bucket) AS bucket,
       symbol,
       first(open, bucket) AS open,
       max(high) AS high,
       min(low) AS low,
       last(close, bucket) AS close,
       sum(volume) AS volume
FROM bars_1m
WHERE span_min <= 60
GROUP BY 1, 2
WITH DATA;

SELECT add_continuous_aggregate_policy('ohlcv_1h',
  start_offset => INTERVAL '7 days',
  end_offset => INTERVAL '1 hour',
  schedule_interval => INTERVAL '15 minutes',
  if_not_exists => true);

CREATE MATERIALIZED VIEW IF NOT EXISTS ohlcv_4h
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket(INTERVAL '4 hours', bucket) AS bucket,
       symbol,
       first(open, bucket) AS open,
       max(high) AS high,
       min(low) AS low,
       last(close, bucket) AS close,
       sum(volume) AS volume
FROM ohlcv_1h
GROUP BY 1, 2
WITH DATA;

SELECT add_continuous_aggregate_policy('ohlcv_4h',
  start_offset => INTERVAL '14 days',
  end_offset => INTERVAL '4 hours',
  schedule_interval => INTERVAL '1 hour',
  if_not_exists => true);

CREATE MATERIALIZED VIEW IF NOT EXISTS ohlcv_1d
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket(INTERVAL '1 day', bucket) AS bucket,
       symbol,
       first(open, bucket) AS open,
       max(high) AS high,
       min(low) AS low,
       last(close, bucket) AS close,
       sum(volume) AS volume
FROM bars_1m
GROUP BY 1, 2
WITH DATA;

SELECT add_continuous_aggregate_policy('ohlcv_1d',
  start_offset => INTERVAL '30 days',
  end_offset => INTERVAL '1 day',
  schedule_interval => INTERVAL '1 hour',
  if_not_exists => true);
