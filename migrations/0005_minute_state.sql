-- What a tick-derived minute needs so later trades merge into it exactly without reading its
-- earlier trades back (they may be compressed, or dropped by a retention policy): the keys
-- (time in epoch ms, trade id) of its open and close trades, and its volume as the exact
-- partials of the sum of its sizes (Shewchuk; volume is their correctly rounded value).
-- NULL on candle minutes, and on tick minutes stored before this migration whose trades are
-- gone: there the stored open, close and volume stand as they are (docs/STORAGE.md).
ALTER TABLE bars_1m
  ADD COLUMN open_ms bigint,
  ADD COLUMN open_id text,
  ADD COLUMN close_ms bigint,
  ADD COLUMN close_id text,
  ADD COLUMN volume_parts double precision[];

-- Existing tick minutes get their keys from their trades, one primary-key range scan each.
UPDATE bars_1m AS b
SET open_ms = f.ms, open_id = f.id, close_ms = l.ms, close_id = l.id
FROM bars_1m AS k
CROSS JOIN LATERAL (
  SELECT (extract(epoch FROM t.ts) * 1000)::bigint AS ms, t.trade_id AS id
  FROM ticks t
  WHERE t.symbol = k.symbol AND t.ts >= k.bucket AND t.ts < k.bucket + INTERVAL '1 minute'
  ORDER BY t.ts, t.trade_id COLLATE "C"
  LIMIT 1
) AS f
CROSS JOIN LATERAL (
  SELECT (extract(epoch FROM t.ts) * 1000)::bigint AS ms, t.trade_id AS id
  FROM ticks t
  WHERE t.symbol = k.symbol AND t.ts >= k.bucket AND t.ts < k.bucket + INTERVAL '1 minute'
  ORDER BY t.ts DESC, t.trade_id COLLATE "C" DESC
  LIMIT 1
) AS l
WHERE b.symbol = k.symbol AND b.bucket = k.bucket AND k.origin = 'ticks';
