-- What the hot-log trimmer relies on (docs/redis.md "Trimming").
--
-- archive_watermarks: per bot, the highest version V such that versions 1..V are ALL in
-- events_archive. The projector moves it in the same transaction as the archive rows, and never
-- past a version the archive lacks (an event dead-lettered instead of archived holds it there), so
-- "version <= watermark" means "archived", and the trimmer never removes from the hot log what the
-- archive does not hold. Operational, like projection_checkpoints: no owner data.
CREATE TABLE archive_watermarks (
  bot_id        text PRIMARY KEY,
  log_partition integer NOT NULL,
  version       integer NOT NULL CHECK (version >= 0)
);
CREATE INDEX archive_watermarks_partition_idx ON archive_watermarks (log_partition);

-- the watermarks of what is archived already: the end of each bot's gapless run from version 1
INSERT INTO archive_watermarks (bot_id, log_partition, version)
SELECT bot_id, min(log_partition), max(version)
FROM (
  SELECT bot_id, log_partition, version, row_number() OVER (PARTITION BY bot_id ORDER BY version) AS rn
  FROM events_archive
) a
WHERE version = rn
GROUP BY bot_id;

GRANT SELECT, INSERT, UPDATE, DELETE ON archive_watermarks TO botfleet_projector;
GRANT SELECT ON archive_watermarks TO botfleet_api, botfleet_auditor;
ALTER TABLE archive_watermarks OWNER TO botfleet_migrator;

-- Where the trimmer of each partition got to: every partition-log entry up to `position` was
-- handled (its bot's stream trimmed as far as the rules allowed then). On the Postgres log the
-- entries a bot's window keeps stay in the partition log; the cursor saves re-reading them.
CREATE TABLE trim_cursors (
  log_partition integer PRIMARY KEY,
  position      text NOT NULL,
  updated_at    timestamptz NOT NULL DEFAULT now()
);
GRANT SELECT, INSERT, UPDATE, DELETE ON trim_cursors TO botfleet_projector;
GRANT SELECT ON trim_cursors TO botfleet_api, botfleet_auditor;
ALTER TABLE trim_cursors OWNER TO botfleet_migrator;

-- When the log recorded each event (its server's clock), so `tail` shows the same time for an
-- event read from the archive as from the hot log. NULL for events archived before this column.
ALTER TABLE events_archive ADD COLUMN recorded_at timestamptz;
