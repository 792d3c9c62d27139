-- The stores a node needs beside the event log when it runs on Postgres alone (embedded mode on
-- PGlite): bot inboxes, actor snapshots, long-polling offsets, and the fleet directory (which bots
-- this fleet runs). In production the inboxes, snapshots and offsets live in Redis; the directory
-- is here in both modes.

-- Per-bot inbox sequence. Taking the row lock of a bot's head serialises its enqueues, so an
-- entry's seq order is also its commit order: a reader past seq n can never later find a
-- smaller seq committed behind its back.
CREATE TABLE inbox_heads (
  bot_id text PRIMARY KEY,
  last_seq bigint NOT NULL
);

CREATE TABLE inbox_entries (
  bot_id text NOT NULL,
  seq bigint NOT NULL,
  update jsonb NOT NULL,
  received_at timestamptz NOT NULL,
  PRIMARY KEY (bot_id, seq)
);

CREATE TABLE inbox_dead_letters (
  bot_id text NOT NULL,
  entry_id text NOT NULL,
  update jsonb NOT NULL,
  reason text NOT NULL,
  at timestamptz NOT NULL,
  PRIMARY KEY (bot_id, entry_id)
);

-- A snapshot is a cache of the fold of a bot's stream up to `version`; only the newest is kept.
CREATE TABLE actor_snapshots (
  bot_id text PRIMARY KEY,
  version bigint NOT NULL,
  schema_version integer NOT NULL,
  state jsonb NOT NULL,
  saved_at timestamptz NOT NULL DEFAULT now()
);

-- The next getUpdates offset of each bot in polling mode.
CREATE TABLE polling_offsets (
  bot_id text PRIMARY KEY,
  next_offset bigint NOT NULL
);

-- The bots this fleet runs: every node starts (and competes for the lease of) each of them.
CREATE TABLE fleet_bots (
  bot_id text PRIMARY KEY,
  added_at timestamptz NOT NULL DEFAULT now()
);
