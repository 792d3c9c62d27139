-- Broadcasts (docs/broadcasts.md): one message to a segment of a bot's users. The recipient list is
-- frozen when the broadcast is created, so a resumed broadcast sends to the same users in the same
-- order; `next_seq` is how far the runner has put messages into the bot's inbox. What was actually
-- sent is decided by the bot's actor and recorded on its stream (each message is an inbox update
-- with its own update_id, so a message put in twice is handled once); the counters here are copied
-- from there for `broadcast list` and `status`.
CREATE TABLE broadcasts (
  broadcast_id  bigserial PRIMARY KEY,
  bot_id        text NOT NULL,
  owner_id      text NOT NULL,
  text          text NOT NULL,
  segment       text NOT NULL,
  state         text NOT NULL CHECK (state IN ('running', 'paused', 'cancelled', 'done')),
  not_before    timestamptz NOT NULL,
  total         integer NOT NULL,
  skipped_blocked integer NOT NULL DEFAULT 0,
  next_seq      integer NOT NULL DEFAULT 0,
  sent          integer NOT NULL DEFAULT 0,
  blocked       integer NOT NULL DEFAULT 0,
  failed        integer NOT NULL DEFAULT 0,
  handled       integer NOT NULL DEFAULT 0,
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX broadcasts_active ON broadcasts (state, not_before) WHERE state = 'running';
CREATE INDEX broadcasts_bot ON broadcasts (bot_id, broadcast_id);

CREATE TABLE broadcast_recipients (
  broadcast_id  bigint NOT NULL REFERENCES broadcasts (broadcast_id) ON DELETE CASCADE,
  seq           integer NOT NULL,
  user_id       bigint NOT NULL,
  PRIMARY KEY (broadcast_id, seq)
);

-- a node runs broadcasts (reads and advances them); the CLI creates and controls them as the migration owner
GRANT SELECT, INSERT, UPDATE ON broadcasts, broadcast_recipients TO botfleet_runtime;
GRANT USAGE, SELECT ON SEQUENCE broadcasts_broadcast_id_seq TO botfleet_runtime;
