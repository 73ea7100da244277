-- Every trade, once. The key holds ts because a TimescaleDB hypertable's unique indexes must
-- contain its time column; a re-sent trade has the same ts and id, so writing it is a no-op.
CREATE TABLE ticks (
  symbol   text             NOT NULL,
  ts       timestamptz      NOT NULL,
  trade_id text             NOT NULL,
  price    double precision NOT NULL CHECK (price > 0),
  size     double precision NOT NULL CHECK (size > 0),
  side     text             NOT NULL CHECK (side IN ('buy', 'sell', 'unknown')),
  source   text             NOT NULL,
  PRIMARY KEY (symbol, ts, trade_id)
);
