-- Per-user data keys for crypto-shredding (docs/privacy.md). Kept OUTSIDE the event log and its
-- archive on purpose: events will carry a user's personal fields sealed with that user's key, and
-- forgetting the user destroys the key, which makes every copy of those fields (log, archive,
-- backups of them) unreadable without rewriting history. Each key is itself sealed with the
-- fleet key (BOTFLEET_SECRET_KEY), so a dump of this table alone reveals nothing.
-- A forgotten user keeps a row with key NULL: the erasure itself is a fact (when, by whom),
-- and a key is never created again for that user of that bot.
CREATE TABLE user_keys (
  bot_id       text NOT NULL,
  user_id      bigint NOT NULL,
  sealed_key   text,
  created_at   timestamptz NOT NULL DEFAULT now(),
  forgotten_at timestamptz,
  forgotten_by text,
  PRIMARY KEY (bot_id, user_id),
  CHECK ((sealed_key IS NULL) = (forgotten_at IS NOT NULL))
);
GRANT SELECT, INSERT, UPDATE ON user_keys TO botfleet_runtime;
