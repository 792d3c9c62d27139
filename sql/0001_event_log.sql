-- The Postgres event log (embedded mode, and the cold log): every event of every bot.
-- A bot's stream is its rows ordered by version; a partition log is the rows of one logical
-- partition (FNV-1a of bot_id, computed by the app) ordered by (tx, position): see docs/postgres-log.md.
CREATE TABLE events (
  -- global insertion order; not commit order, hence tx below
  position bigint GENERATED ALWAYS AS IDENTITY,
  -- the inserting transaction: readers only take rows whose tx is below every running one
  tx xid8 NOT NULL DEFAULT pg_current_xact_id(),
  partition smallint NOT NULL,
  bot_id text NOT NULL,
  -- NULL only for a foreign entry (raw IS NOT NULL): in the partition log, in no bot stream
  version integer,
  event_id text NOT NULL,
  type text NOT NULL,
  schema_version integer,
  occurred_at text NOT NULL,
  correlation_id text NOT NULL,
  causation_id text,
  actor text NOT NULL,
  data jsonb,
  -- fields exactly as a foreign writer gave them, when they cannot be stored typed
  raw jsonb,
  recorded_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (bot_id, position),
  UNIQUE (bot_id, version),
  CHECK ((raw IS NULL AND version >= 1 AND data IS NOT NULL AND schema_version IS NOT NULL) OR (raw IS NOT NULL AND version IS NULL))
) PARTITION BY HASH (bot_id);

CREATE TABLE events_p00 PARTITION OF events FOR VALUES WITH (MODULUS 16, REMAINDER 0);
CREATE TABLE events_p01 PARTITION OF events FOR VALUES WITH (MODULUS 16, REMAINDER 1);
CREATE TABLE events_p02 PARTITION OF events FOR VALUES WITH (MODULUS 16, REMAINDER 2);
CREATE TABLE events_p03 PARTITION OF events FOR VALUES WITH (MODULUS 16, REMAINDER 3);
CREATE TABLE events_p04 PARTITION OF events FOR VALUES WITH (MODULUS 16, REMAINDER 4);
CREATE TABLE events_p05 PARTITION OF events FOR VALUES WITH (MODULUS 16, REMAINDER 5);
CREATE TABLE events_p06 PARTITION OF events FOR VALUES WITH (MODULUS 16, REMAINDER 6);
CREATE TABLE events_p07 PARTITION OF events FOR VALUES WITH (MODULUS 16, REMAINDER 7);
CREATE TABLE events_p08 PARTITION OF events FOR VALUES WITH (MODULUS 16, REMAINDER 8);
CREATE TABLE events_p09 PARTITION OF events FOR VALUES WITH (MODULUS 16, REMAINDER 9);
CREATE TABLE events_p10 PARTITION OF events FOR VALUES WITH (MODULUS 16, REMAINDER 10);
CREATE TABLE events_p11 PARTITION OF events FOR VALUES WITH (MODULUS 16, REMAINDER 11);
CREATE TABLE events_p12 PARTITION OF events FOR VALUES WITH (MODULUS 16, REMAINDER 12);
CREATE TABLE events_p13 PARTITION OF events FOR VALUES WITH (MODULUS 16, REMAINDER 13);
CREATE TABLE events_p14 PARTITION OF events FOR VALUES WITH (MODULUS 16, REMAINDER 14);
CREATE TABLE events_p15 PARTITION OF events FOR VALUES WITH (MODULUS 16, REMAINDER 15);

CREATE INDEX events_partition_log ON events (partition, tx, position);

-- One row per bot: its stream version (kept when old events are trimmed).
CREATE TABLE streams (
  bot_id text PRIMARY KEY,
  partition smallint NOT NULL,
  version integer NOT NULL CHECK (version >= 0)
);
