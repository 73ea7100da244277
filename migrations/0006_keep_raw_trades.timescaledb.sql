-- TimescaleDB only: raw trades are kept (compressed after a week, by 0003's policy) instead of
-- being dropped after 180 days. A stored trade is how a re-sent one is recognised: once its row
-- is dropped, the same trade written again would count twice in its minute. Candles never
-- depended on the raw rows (0005 keeps what merging needs), so an operator who must bound disk
-- may add a retention policy back and accept that; docs/STORAGE.md says what then holds.
SELECT remove_retention_policy('ticks', if_exists => true);
