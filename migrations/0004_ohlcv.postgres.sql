-- Plain PostgreSQL: OHLCV above 1 minute as views over bars_1m, bucketed by date_bin from the
-- epoch (the same UTC buckets TimescaleDB's time_bucket gives). The repository reads ranges
-- straight from bars_1m with the same expressions, so a range query uses the primary key.

CREATE VIEW ohlcv_5m AS
SELECT date_bin(INTERVAL '5 minutes', bucket, TIMESTAMPTZ '1970-01-01 00:00:00+00') AS bucket,
       symbol,
       (array_agg(open ORDER BY bucket))[1] AS open,
       max(high) AS high,
       min(low) AS low,
       (array_agg(close ORDER BY bucket DESC))[1] AS close,
       sum(volume) AS volume
FROM bars_1m
GROUP BY 1, 2;

CREATE VIEW ohlcv_15m AS
SELECT date_bin(INTERVAL '15 minutes', bucket, TIMESTAMPTZ '1970-01-01 00:00:00+00') AS bucket,
       symbol,
       (array_agg(open ORDER BY bucket))[1] AS open,
       max(high) AS high,
       min(low) AS low,
       (array_agg(close ORDER BY bucket DESC))[1] AS close,
       sum(volume) AS volume
FROM bars_1m
GROUP BY 1, 2;

CREATE VIEW ohlcv_1h AS
SELECT date_bin(INTERVAL '1 hour', bucket, TIMESTAMPTZ '1970-01-01 00:00:00+00') AS bucket,
       symbol,
       (array_agg(open ORDER BY bucket))[1] AS open,
       max(high) AS high,
       min(low) AS low,
       (array_agg(close ORDER BY bucket DESC))[1] AS close,
       sum(volume) AS volume
FROM bars_1m
GROUP BY 1, 2;

CREATE VIEW ohlcv_4h AS
SELECT date_bin(INTERVAL '4 hours', bucket, TIMESTAMPTZ '1970-01-01 00:00:00+00') AS bucket,
       symbol,
       (array_agg(open ORDER BY bucket))[1] AS open,
       max(high) AS high,
       min(low) AS low,
       (array_agg(close ORDER BY bucket DESC))[1] AS close,
       sum(volume) AS volume
FROM bars_1m
GROUP BY 1, 2;

CREATE VIEW ohlcv_1d AS
SELECT date_bin(INTERVAL '1 day', bucket, TIMESTAMPTZ '1970-01-01 00:00:00+00') AS bucket,
       symbol,
       (array_agg(open ORDER BY bucket))[1] AS open,
       max(high) AS high,
       min(low) AS low,
       (array_agg(close ORDER BY bucket DESC))[1] AS close,
       sum(volume) AS volume
FROM bars_1m
GROUP BY 1, 2;
