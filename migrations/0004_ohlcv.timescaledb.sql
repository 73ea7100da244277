-- migrate:no-transaction
-- TimescaleDB only: OHLCV above 1 minute as hierarchical continuous aggregates over bars_1m,
-- each on the one below (5m on 1m, 15m on 5m, 1h on 15m, 4h on 1h, 1d on 4h). Real-time
-- aggregation (materialized_only = false) shows the still-forming bucket; policies refresh the
-- recent past, and writers refresh older ranges they change (see packages/db, refreshAggregates).
-- Continuous-aggregate DDL cannot run inside a transaction block, hence no-transaction, and
-- every statement is safe to re-run after a failure part-way.

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
GROUP BY 1, 2
WITH NO DATA;

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
WITH NO DATA;

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
FROM ohlcv_15m
GROUP BY 1, 2
WITH NO DATA;

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
WITH NO DATA;

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
FROM ohlcv_4h
GROUP BY 1, 2
WITH NO DATA;

SELECT add_continuous_aggregate_policy('ohlcv_1d',
  start_offset => INTERVAL '30 days',
  end_offset => INTERVAL '1 day',
  schedule_interval => INTERVAL '1 hour',
  if_not_exists => true);
