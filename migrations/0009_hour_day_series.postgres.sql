-- Plain PostgreSQL only (docs/STORAGE.md, "Hours and days on plain PostgreSQL"): the hourly and
-- daily series are kept in tables, so a year of 1h bars reads 8,784 rows on the primary key instead
-- of grouping 525,600 minutes on every read (issue 17). TimescaleDB has continuous aggregates for
-- this and records the number as a no-op.
--
-- bars_1h holds what the 0008 view ohlcv_1h computed, one row per (symbol, hour) that has rows of
-- span_min <= 60 in bars_1m; bars_1d what ohlcv_1d computed, from every row. Statement-level
-- triggers with transition tables keep both right after every INSERT, UPDATE, DELETE and TRUNCATE
-- of bars_1m, whoever writes it: they recompute only the hours and days the statement touched,
-- from their source rows. ohlcv_1h, ohlcv_4h (from the hours) and ohlcv_1d read the tables, with
-- the same columns and answers as before.

-- No writer may change bars_1m between the backfill below and the triggers taking over.
LOCK TABLE bars_1m IN SHARE ROW EXCLUSIVE MODE;

CREATE TABLE bars_1h (
  symbol   text             NOT NULL,
  bucket   timestamptz      NOT NULL,
  open     double precision NOT NULL,
  high     double precision NOT NULL,
  low      double precision NOT NULL,
  close    double precision NOT NULL,
  volume   double precision NOT NULL,
  -- The buckets of the hour's first and last bars_1m rows. A day orders its open and close by
  -- them, as ohlcv_1d orders the rows themselves: a day candle at 00:00 opens before the minute
  -- 00:05 that opens hour 00:00.
  open_at  timestamptz      NOT NULL,
  close_at timestamptz      NOT NULL,
  PRIMARY KEY (symbol, bucket)
);

CREATE TABLE bars_1d (
  symbol text             NOT NULL,
  bucket timestamptz      NOT NULL,
  open   double precision NOT NULL,
  high   double precision NOT NULL,
  low    double precision NOT NULL,
  close  double precision NOT NULL,
  volume double precision NOT NULL,
  PRIMARY KEY (symbol, bucket)
);

-- A day is its hours plus its day candles (span_min 1440, rare): this finds those without
-- reading the day's minutes.
CREATE INDEX bars_1m_day_candles ON bars_1m (symbol, bucket) WHERE span_min > 60;

-- The backfill: the 0008 views' expressions, grouped once over everything, stored in key order
-- so a symbol's range reads few pages.
INSERT INTO bars_1h (symbol, bucket, open, high, low, close, volume, open_at, close_at)
SELECT symbol,
       date_bin(INTERVAL '1 hour', bucket, TIMESTAMPTZ '1970-01-01 00:00:00+00'),
       (array_agg(open ORDER BY bucket))[1],
       max(high),
       min(low),
       (array_agg(close ORDER BY bucket DESC))[1],
       sum(volume),
       min(bucket),
       max(bucket)
FROM bars_1m
WHERE span_min <= 60
GROUP BY 1, 2
ORDER BY 1, 2;

INSERT INTO bars_1d (symbol, bucket, open, high, low, close, volume)
SELECT symbol,
       date_bin(INTERVAL '1 day', bucket, TIMESTAMPTZ '1970-01-01 00:00:00+00'),
       (array_agg(open ORDER BY open_at))[1],
       max(high),
       min(low),
       (array_agg(close ORDER BY close_at DESC))[1],
       sum(volume)
FROM (
  SELECT symbol, bucket, open, high, low, close, volume, open_at, close_at FROM bars_1h
  UNION ALL
  SELECT symbol, bucket, open, high, low, close, volume, bucket, bucket FROM bars_1m
  WHERE span_min > 60
) AS parts
GROUP BY 1, 2
ORDER BY 1, 2;

-- The trigger. search_path is fixed to this migration's, so the tables it names are this
-- schema's whichever path the writer's session has.
CREATE FUNCTION bars_1m_keep_hours_and_days() RETURNS trigger
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
  -- Distinct (symbol, hour) of the changed rows, and whether the row is an hour's (span <= 60).
  key_symbols text[];
  key_hours   timestamptz[];
  key_fine    boolean[];
  old_symbols text[];
  old_hours   timestamptz[];
  old_fine    boolean[];
  series      text;
BEGIN
  IF TG_OP = 'TRUNCATE' THEN
    TRUNCATE bars_1h, bars_1d;
    RETURN NULL;
  END IF;
  -- A transition table exists only for the events that have it: INSERT new_rows, DELETE
  -- old_rows, UPDATE both (a row's span can change: a minute replacing an hour candle's row).
  IF TG_OP IN ('INSERT', 'UPDATE') THEN
    SELECT array_agg(symbol), array_agg(hour), array_agg(fine)
    INTO key_symbols, key_hours, key_fine
    FROM (
      SELECT DISTINCT symbol,
             date_bin(INTERVAL '1 hour', bucket, TIMESTAMPTZ '1970-01-01 00:00:00+00') AS hour,
             span_min <= 60 AS fine
      FROM new_rows
    ) AS k;
  END IF;
  IF TG_OP IN ('DELETE', 'UPDATE') THEN
    SELECT array_agg(symbol), array_agg(hour), array_agg(fine)
    INTO old_symbols, old_hours, old_fine
    FROM (
      SELECT DISTINCT symbol,
             date_bin(INTERVAL '1 hour', bucket, TIMESTAMPTZ '1970-01-01 00:00:00+00') AS hour,
             span_min <= 60 AS fine
      FROM old_rows
    ) AS k;
    key_symbols := key_symbols || old_symbols;
    key_hours := key_hours || old_hours;
    key_fine := key_fine || old_fine;
  END IF;
  -- Statements that changed nothing (a finer row's probe for coarse candles to drop) stop here.
  IF key_symbols IS NULL THEN
    RETURN NULL;
  END IF;

  -- The repository's per-symbol series lock (packages/db, SERIES_LOCK_PREFIX), taken again here
  -- (re-entrant) so a writer that did not take it still serialises: each statement below then
  -- reads, in its own READ COMMITTED snapshot, every minute an earlier holder committed, and two
  -- writers of one hour cannot each store it without the other's rows. Sorted like the
  -- repository's, so no deadlocks between such writers.
  FOR series IN SELECT DISTINCT s COLLATE "C" FROM unnest(key_symbols) AS s ORDER BY 1 LOOP
    PERFORM pg_advisory_xact_lock(hashtext('candlestream:bars_1m:' || series));
  END LOOP;

  -- The touched hours, from their rows of span_min <= 60 (as ohlcv_1h in 0008); an hour left
  -- without rows is removed.
  WITH keys AS (
    SELECT DISTINCT symbol, hour AS bucket
    FROM unnest(key_symbols, key_hours, key_fine) AS k(symbol, hour, fine)
    WHERE fine
  ),
  agg AS (
    SELECT keys.symbol, keys.bucket, a.*
    FROM keys
    CROSS JOIN LATERAL (
      SELECT (array_agg(b.open ORDER BY b.bucket))[1] AS open,
             max(b.high) AS high,
             min(b.low) AS low,
             (array_agg(b.close ORDER BY b.bucket DESC))[1] AS close,
             sum(b.volume) AS volume,
             min(b.bucket) AS open_at,
             max(b.bucket) AS close_at
      FROM bars_1m b
      WHERE b.symbol = keys.symbol
        AND b.bucket >= keys.bucket AND b.bucket < keys.bucket + INTERVAL '1 hour'
        AND b.span_min <= 60
    ) AS a
  ),
  emptied AS (
    DELETE FROM bars_1h h USING agg
    WHERE agg.open_at IS NULL AND h.symbol = agg.symbol AND h.bucket = agg.bucket
  )
  INSERT INTO bars_1h AS h (symbol, bucket, open, high, low, close, volume, open_at, close_at)
  SELECT symbol, bucket, open, high, low, close, volume, open_at, close_at
  FROM agg WHERE open_at IS NOT NULL
  ORDER BY symbol, bucket
  ON CONFLICT (symbol, bucket) DO UPDATE SET
    open = EXCLUDED.open, high = EXCLUDED.high, low = EXCLUDED.low, close = EXCLUDED.close,
    volume = EXCLUDED.volume, open_at = EXCLUDED.open_at, close_at = EXCLUDED.close_at
  WHERE (h.open, h.high, h.low, h.close, h.volume, h.open_at, h.close_at)
        IS DISTINCT FROM (EXCLUDED.open, EXCLUDED.high, EXCLUDED.low, EXCLUDED.close,
                          EXCLUDED.volume, EXCLUDED.open_at, EXCLUDED.close_at);

  -- The touched days, from their hours (just brought up to date) and their day candles: every
  -- row of the day, as ohlcv_1d in 0008, with open and close ordered by the rows' own buckets.
  WITH keys AS (
    SELECT DISTINCT symbol,
           date_bin(INTERVAL '1 day', hour, TIMESTAMPTZ '1970-01-01 00:00:00+00') AS bucket
    FROM unnest(key_symbols, key_hours) AS k(symbol, hour)
  ),
  agg AS (
    SELECT keys.symbol, keys.bucket, a.*
    FROM keys
    CROSS JOIN LATERAL (
      SELECT (array_agg(p.open ORDER BY p.open_at))[1] AS open,
             max(p.high) AS high,
             min(p.low) AS low,
             (array_agg(p.close ORDER BY p.close_at DESC))[1] AS close,
             sum(p.volume) AS volume,
             count(*) AS parts
      FROM (
        SELECT h.open, h.high, h.low, h.close, h.volume, h.open_at, h.close_at
        FROM bars_1h h
        WHERE h.symbol = keys.symbol
          AND h.bucket >= keys.bucket AND h.bucket < keys.bucket + INTERVAL '1 day'
        UNION ALL
        SELECT b.open, b.high, b.low, b.close, b.volume, b.bucket, b.bucket
        FROM bars_1m b
        WHERE b.symbol = keys.symbol
          AND b.bucket >= keys.bucket AND b.bucket < keys.bucket + INTERVAL '1 day'
          AND b.span_min > 60
      ) AS p
    ) AS a
  ),
  emptied AS (
    DELETE FROM bars_1d d USING agg
    WHERE agg.parts = 0 AND d.symbol = agg.symbol AND d.bucket = agg.bucket
  )
  INSERT INTO bars_1d AS d (symbol, bucket, open, high, low, close, volume)
  SELECT symbol, bucket, open, high, low, close, volume
  FROM agg WHERE parts > 0
  ORDER BY symbol, bucket
  ON CONFLICT (symbol, bucket) DO UPDATE SET
    open = EXCLUDED.open, high = EXCLUDED.high, low = EXCLUDED.low, close = EXCLUDED.close,
    volume = EXCLUDED.volume
  WHERE (d.open, d.high, d.low, d.close, d.volume)
        IS DISTINCT FROM (EXCLUDED.open, EXCLUDED.high, EXCLUDED.low, EXCLUDED.close,
                          EXCLUDED.volume);
  RETURN NULL;
END;
$$;

-- One trigger per event: a trigger with transition tables fires for a single event. An
-- INSERT ... ON CONFLICT DO UPDATE fires both the INSERT and the UPDATE trigger, each with its
-- own rows.
CREATE TRIGGER bars_1m_keep_hours_and_days_insert
AFTER INSERT ON bars_1m REFERENCING NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION bars_1m_keep_hours_and_days();

CREATE TRIGGER bars_1m_keep_hours_and_days_update
AFTER UPDATE ON bars_1m REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION bars_1m_keep_hours_and_days();

CREATE TRIGGER bars_1m_keep_hours_and_days_delete
AFTER DELETE ON bars_1m REFERENCING OLD TABLE AS old_rows
FOR EACH STATEMENT EXECUTE FUNCTION bars_1m_keep_hours_and_days();

CREATE TRIGGER bars_1m_keep_hours_and_days_truncate
AFTER TRUNCATE ON bars_1m
FOR EACH STATEMENT EXECUTE FUNCTION bars_1m_keep_hours_and_days();

-- The same columns and answers as the 0008 views: 1h and 4h from the rows of span_min <= 60
-- (4h as the four hours' aggregate), 1d from everything.
CREATE OR REPLACE VIEW ohlcv_1h AS
SELECT bucket, symbol, open, high, low, close, volume FROM bars_1h;

CREATE OR REPLACE VIEW ohlcv_4h AS
SELECT date_bin(INTERVAL '4 hours', bucket, TIMESTAMPTZ '1970-01-01 00:00:00+00') AS bucket,
       symbol,
       (array_agg(open ORDER BY bucket))[1] AS open,
       max(high) AS high,
       min(low) AS low,
       (array_agg(close ORDER BY bucket DESC))[1] AS close,
       sum(volume) AS volume
FROM bars_1h
GROUP BY 1, 2;

CREATE OR REPLACE VIEW ohlcv_1d AS
SELECT bucket, symbol, open, high, low, close, volume FROM bars_1d;
