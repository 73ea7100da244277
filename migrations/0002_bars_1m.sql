-- The one 1-minute series per symbol that every interval is built from (docs/STORAGE.md).
-- Rows come from trades (origin 'ticks', recomputed from `ticks` whenever a trade lands in the
-- minute) or from imported and backfilled candles (origin 'candles', only where no trade exists).
CREATE TABLE bars_1m (
  symbol     text             NOT NULL,
  bucket     timestamptz      NOT NULL,
  open       double precision NOT NULL,
  high       double precision NOT NULL,
  low        double precision NOT NULL,
  close      double precision NOT NULL,
  volume     double precision NOT NULL CHECK (volume >= 0),
  trades     integer,
  origin     text             NOT NULL CHECK (origin IN ('ticks', 'candles')),
  source     text,
  updated_at timestamptz      NOT NULL DEFAULT now(),
  PRIMARY KEY (symbol, bucket),
  CHECK (high >= low AND high >= open AND high >= close AND low <= open AND low <= close)
);

CREATE VIEW ohlcv_1m AS
SELECT bucket, symbol, open, high, low, close, volume FROM bars_1m;
