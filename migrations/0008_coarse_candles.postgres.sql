-- Coarse candles (docs/STORAGE.md, "Hours and days where the source has no minutes"): a source
-- that keeps only hourly or daily candles for old times (CryptoCompare: about 7 days of minutes,
-- years of hours) still gives 1h, 4h and 1d bars there. Such a candle is one bars_1m row that
-- covers its whole hour or day (span_min 60 or 1440), written only where the period has no finer
-- row; a finer row (a trade's minute, a 1-minute candle) removes it. Each relation reads only the
-- rows it can answer: 1m, 5m and 15m the minutes, 1h and 4h also the hours, 1d everything.
--
-- Plain PostgreSQL: the views gain the same filters.

ALTER TABLE bars_1m
  ADD COLUMN span_min smallint NOT NULL DEFAULT 1 CHECK (span_min IN (1, 60, 1440));

CREATE OR REPLACE VIEW ohlcv_1m AS
SELECT bucket, symbol, open, high, low, close, volume FROM bars_1m WHERE span_min = 1;

CREATE OR REPLACE VIEW ohlcv_5m AS
SELECT date_bin(INTERVAL '5 minutes', bucket, TIMESTAMPTZ '1970-01-01 00:00:00+00') AS bucket,
       symbol,
       (array_agg(open ORDER BY bucket))[1] AS open,
       max(high) AS high,
       min(low) AS low,
       (array_agg(close ORDER BY bucket DESC))[1] AS close,
       sum(volume) AS volume
FROM bars_1m
WHERE span_min = 1
GROUP BY 1, 2;

CREATE OR REPLACE VIEW ohlcv_15m AS
SELECT date_bin(INTERVAL '15 minutes', bucket, TIMESTAMPTZ '1970-01-01 00:00:00+00') AS bucket,
       symbol,
       (array_agg(open ORDER BY bucket))[1] AS open,
       max(high) AS high,
       min(low) AS low,
       (array_agg(close ORDER BY bucket DESC))[1] AS close,
       sum(volume) AS volume
FROM bars_1m
WHERE span_min = 1
GROUP BY 1, 2;

CREATE OR REPLACE VIEW ohlcv_1h AS
SELECT date_bin(INTERVAL '1 hour', bucket, TIMESTAMPTZ '1970-01-01 00:00:00+00') AS bucket,
       symbol,
       (array_agg(open ORDER BY bucket))[1] AS open,
       max(high) AS high,
       min(low) AS low,
       (array_agg(close ORDER BY bucket DESC))[1] AS close,
       sum(volume) AS volume
FROM bars_1m
WHERE span_min <= 60
GROUP BY 1, 2;

CREATE OR REPLACE VIEW ohlcv_4h AS
SELECT date_bin(INTERVAL '4 hours', bucket, TIMESTAMPTZ '1970-01-01 00:00:00+00') AS bucket,
       symbol,
       (array_agg(open ORDER BY bucket))[1] AS open,
       max(high) AS high,
       min(low) AS low,
       (array_agg(close ORDER BY bucket DESC))[1] AS close,
       sum(volume) AS volume
FROM bars_1m
WHERE span_min <= 60
GROUP BY 1, 2;

CREATE OR REPLACE VIEW ohlcv_1d AS
SELECT date_bin(INTERVAL '1 day', bucket, TIMESTAMPTZ '1970-01-01 00:00:00+00') AS bucket,
       symbol,
       (array_agg(open ORDER BY bucket))[1] AS open,
       max(high) AS high,
       min(low) AS low,
       (array_agg(close ORDER BY bucket DESC))[1] AS close,
       sum(volume) AS volume
FROM bars_1m
GROUP BY 1, 2;
