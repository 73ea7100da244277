-- Backfill jobs (docs/BACKFILLS.md): the coordinator's record of each request for history, so a
-- restart resumes every job where it was. Times are timestamptz like every other table; ranges
-- are JSON arrays of {from, to} in epoch ms, as the messages carry them.
CREATE TABLE backfill_jobs (
  id               text        PRIMARY KEY,
  symbol           text        NOT NULL,
  from_ts          timestamptz NOT NULL,
  to_ts            timestamptz NOT NULL,
  status           text        NOT NULL
                   CHECK (status IN ('queued', 'fetching', 'storing', 'done', 'failed')),
  -- What was missing when the job was planned: the minutes it fetches, disjoint and ascending.
  ranges           jsonb       NOT NULL DEFAULT '[]',
  -- Running jobs that were already fetching part of this range: this one ends after them.
  waits_on         text[]      NOT NULL DEFAULT '{}',
  minutes_total    integer     NOT NULL DEFAULT 0 CHECK (minutes_total >= 0),
  minutes_done     integer     NOT NULL DEFAULT 0 CHECK (minutes_done >= 0),
  topic            text,
  error            text,
  -- Parts the source could not provide, with its reason.
  unavailable      jsonb       NOT NULL DEFAULT '[]',
  requested_by     text,
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now(),
  started_at       timestamptz,
  finished_at      timestamptz,
  topic_deleted_at timestamptz,
  CHECK (to_ts > from_ts)
);

-- The coordinator's questions: the jobs still running (per symbol), and the newest jobs.
CREATE INDEX backfill_jobs_active ON backfill_jobs (symbol) WHERE status NOT IN ('done', 'failed');
CREATE INDEX backfill_jobs_created ON backfill_jobs (created_at DESC);
