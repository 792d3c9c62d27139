-- A bot's state in two parts (docs/actors.md, "Keyed state"): the small bot-level part in
-- actor_snapshots, and one row per user / session / imported record in actor_entries, written
-- only when it changed since the previous snapshot and read back only when an update needs it.
-- Both are caches of the fold of the bot's stream: dropping them costs a longer rehydration,
-- never a different state.
--
-- Every row carries the lease fence and the stream version it was written at. A write replaces a
-- row only from a newer lease, or from the same lease at a version at least as new: a node that
-- lost the bot's lease can never overwrite what its successor wrote.

ALTER TABLE actor_snapshots ADD COLUMN fence bigint NOT NULL DEFAULT 0;

CREATE TABLE actor_entries (
  bot_id  text NOT NULL,
  key     text NOT NULL,
  fence   bigint NOT NULL,
  version bigint NOT NULL,
  data    jsonb NOT NULL,
  PRIMARY KEY (bot_id, key)
) PARTITION BY HASH (bot_id);

DO $$
DECLARE
  i int;
BEGIN
  FOR i IN 0 .. 15 LOOP
    EXECUTE format('CREATE TABLE %I PARTITION OF actor_entries FOR VALUES WITH (MODULUS 16, REMAINDER %s)',
      'actor_entries_p' || lpad(i::text, 2, '0'), i);
  END LOOP;
END
$$;
