-- What scheduled backups, their verification and the restore drills found, one row per run:
-- `botfleet status`, `botfleet backup list` and the backup metrics read it. Operational, not
-- owner data (like projection_checkpoints): no owner column, no row-level security.
CREATE TABLE backup_runs (
  id          bigserial PRIMARY KEY,
  kind        text NOT NULL CHECK (kind IN ('backup', 'verify', 'drill')),
  -- the backup's name in its target (null: the run failed before it had one)
  backup      text,
  -- where: a folder path or s3://bucket/prefix, never credentials
  target      text NOT NULL,
  node_id     text NOT NULL,
  started_at  timestamptz NOT NULL,
  finished_at timestamptz NOT NULL,
  ok          boolean NOT NULL,
  events      bigint,
  bytes       bigint,
  -- the problems found (verification), the differences (drill) or the error
  detail      jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX backup_runs_kind_time_idx ON backup_runs (kind, finished_at DESC);
CREATE INDEX backup_runs_backup_idx ON backup_runs (backup, kind, finished_at DESC);

GRANT SELECT ON backup_runs TO botfleet_api, botfleet_auditor;
ALTER TABLE backup_runs OWNER TO botfleet_migrator;
