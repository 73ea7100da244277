-- TimescaleDB only: trades and 1-minute bars become hypertables. Raw trades compress after a
-- week and are dropped after 180 days; the 1-minute bars (and every interval above them) stay.
SELECT create_hypertable('ticks', by_range('ts', INTERVAL '1 day'), migrate_data => true);
SELECT create_hypertable('bars_1m', by_range('bucket', INTERVAL '7 days'), migrate_data => true);

ALTER TABLE ticks SET (
  timescaledb.compress,
  timescaledb.compress_segmentby = 'symbol',
  timescaledb.compress_orderby = 'ts, trade_id'
);
SELECT add_compression_policy('ticks', INTERVAL '7 days');
SELECT add_retention_policy('ticks', INTERVAL '180 days');
