-- Versions where the hot log (Redis) and the archive disagree: the archive holds one event at
-- (bot_id, version) and the hot log delivered another one there (acknowledged Redis writes lost in
-- a crash, then the bot went on from what Redis still had). Written by the projector in the
-- transaction that dead-letters the hot log's copy; while a bot has a row here the projector holds
-- (dead-letters) the rest of its events instead of archiving a history built on the lost one.
-- Operational, not owner data, and not a projection (nothing rebuilds it): an operator resolves a
-- divergence (docs/redis.md) and deletes its rows.
CREATE TABLE archive_divergences (
  bot_id            text NOT NULL,
  version           integer NOT NULL,
  owner_id          text NOT NULL,
  archived_event_id text NOT NULL,
  archived_type     text NOT NULL,
  log_event_id      text NOT NULL,
  log_type          text NOT NULL,
  log_partition     integer NOT NULL,
  log_position      text NOT NULL,
  detected_at       timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (bot_id, version)
);
GRANT SELECT, INSERT ON archive_divergences TO botfleet_projector;
-- botfleet divergence resolve (run with the node's login) drops a bot's rows once resolved
REVOKE ALL ON archive_divergences FROM botfleet_runtime;
GRANT SELECT, DELETE ON archive_divergences TO botfleet_runtime;
ALTER TABLE archive_divergences OWNER TO botfleet_migrator;
