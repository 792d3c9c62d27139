-- Projection tables. Every row is a pure function of the events (no wall-clock columns), so a
-- rebuild from the log comes out identical. Tables keyed by bot are hash-partitioned on bot_id
-- (16 partitions); every table holding owner data carries owner_id for row-level security.

CREATE TABLE owners (
  owner_id     text PRIMARY KEY,
  first_bot_at timestamptz NOT NULL,
  bots         integer NOT NULL DEFAULT 0
);

CREATE TABLE bots (
  bot_id           text NOT NULL,
  owner_id         text NOT NULL,
  name             text NOT NULL,
  kind             text NOT NULL,
  mode             text NOT NULL,
  state            text NOT NULL,
  config           jsonb NOT NULL DEFAULT '{}'::jsonb,
  has_token        boolean NOT NULL DEFAULT false,
  token_rotated_at timestamptz,
  node_id          text,
  last_error       text,
  registered_at    timestamptz NOT NULL,
  removed_at       timestamptz,
  version          integer NOT NULL,
  last_event_at    timestamptz NOT NULL,
  last_activity_at timestamptz,
  inbox_lag_ms     integer,
  log_partition    integer NOT NULL,
  PRIMARY KEY (bot_id)
) PARTITION BY HASH (bot_id);
CREATE INDEX bots_owner_idx ON bots (owner_id);

CREATE TABLE bot_users (
  bot_id          text NOT NULL,
  user_id         bigint NOT NULL,
  owner_id        text NOT NULL,
  first_name      text,
  last_name       text,
  username        text,
  language_code   text,
  first_seen_at   timestamptz NOT NULL,
  last_seen_at    timestamptz NOT NULL,
  blocked_at      timestamptz,
  messages_in     integer NOT NULL DEFAULT 0,
  PRIMARY KEY (bot_id, user_id)
) PARTITION BY HASH (bot_id);

CREATE TABLE chats (
  bot_id           text NOT NULL,
  chat_id          bigint NOT NULL,
  owner_id         text NOT NULL,
  chat_type        text NOT NULL,
  first_message_at timestamptz NOT NULL,
  last_message_at  timestamptz NOT NULL,
  messages_in      integer NOT NULL DEFAULT 0,
  messages_out     integer NOT NULL DEFAULT 0,
  PRIMARY KEY (bot_id, chat_id)
) PARTITION BY HASH (bot_id);

-- Messages in and out. delivery_state: in = received; out = pending (Bot API call intended),
-- sent, failed, unknown (crash between intent and result: never re-sent).
CREATE TABLE messages (
  bot_id         text NOT NULL,
  version        integer NOT NULL,
  owner_id       text NOT NULL,
  direction      text NOT NULL CHECK (direction IN ('in', 'out')),
  chat_id        bigint NOT NULL,
  user_id        bigint,
  message_id     bigint,
  in_reply_to    bigint,
  text           text,
  delivery_state text NOT NULL CHECK (delivery_state IN ('received', 'pending', 'sent', 'failed', 'unknown')),
  call_id        text,
  error          text,
  at             timestamptz NOT NULL,
  PRIMARY KEY (bot_id, version)
) PARTITION BY HASH (bot_id);
CREATE INDEX messages_recent_idx ON messages (bot_id, at DESC);
CREATE INDEX messages_user_idx ON messages (bot_id, user_id, at DESC) WHERE user_id IS NOT NULL;
CREATE INDEX messages_call_idx ON messages (bot_id, call_id) WHERE call_id IS NOT NULL;

CREATE TABLE daily_stats (
  bot_id       text NOT NULL,
  day          date NOT NULL,
  owner_id     text NOT NULL,
  messages_in  integer NOT NULL DEFAULT 0,
  messages_out integer NOT NULL DEFAULT 0,
  active_users integer NOT NULL DEFAULT 0,
  new_users    integer NOT NULL DEFAULT 0,
  PRIMARY KEY (bot_id, day)
) PARTITION BY HASH (bot_id);

-- Who was active on which day: answers "active users per day" and dedups daily_stats.active_users.
CREATE TABLE daily_active_users (
  bot_id   text NOT NULL,
  day      date NOT NULL,
  user_id  bigint NOT NULL,
  owner_id text NOT NULL,
  PRIMARY KEY (bot_id, day, user_id)
) PARTITION BY HASH (bot_id);

-- The first day each user was seen by a bot: feeds daily_stats.new_users.
CREATE TABLE stats_first_seen (
  bot_id   text NOT NULL,
  user_id  bigint NOT NULL,
  owner_id text NOT NULL,
  day      date NOT NULL,
  PRIMARY KEY (bot_id, user_id)
) PARTITION BY HASH (bot_id);

-- Who did what, when, from which stream position. summary is redacted: never a token or ciphertext.
CREATE TABLE audit_log (
  bot_id        text NOT NULL,
  version       integer NOT NULL,
  owner_id      text NOT NULL,
  actor         text NOT NULL,
  actor_kind    text NOT NULL,
  event_type    text NOT NULL,
  summary       jsonb NOT NULL,
  occurred_at   timestamptz NOT NULL,
  log_partition integer NOT NULL,
  position      text NOT NULL,
  PRIMARY KEY (bot_id, version)
) PARTITION BY HASH (bot_id);
CREATE INDEX audit_owner_time_idx ON audit_log (owner_id, occurred_at DESC);
CREATE INDEX audit_bot_time_idx ON audit_log (bot_id, occurred_at DESC);

-- The cold log: every event exactly as the hot log stored it (payload at its stored schema
-- version, upcast on read), with its partition-log position.
CREATE TABLE events_archive (
  bot_id         text NOT NULL,
  version        integer NOT NULL,
  owner_id       text NOT NULL,
  log_partition  integer NOT NULL,
  position       text NOT NULL,
  event_id       text NOT NULL,
  type           text NOT NULL,
  schema_version integer NOT NULL,
  occurred_at    timestamptz NOT NULL,
  correlation_id text NOT NULL,
  causation_id   text,
  actor          text NOT NULL,
  data           jsonb NOT NULL,
  PRIMARY KEY (bot_id, version)
) PARTITION BY HASH (bot_id);

-- Where each projection stands in each partition of the log; written in the same transaction as
-- the rows. Operational, not owner data.
CREATE TABLE projection_checkpoints (
  projection    text NOT NULL,
  log_partition integer NOT NULL,
  position      text NOT NULL,
  events        bigint NOT NULL DEFAULT 0,
  last_event_at timestamptz,
  updated_at    timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (projection, log_partition)
);

DO $$
DECLARE
  t text;
  i int;
BEGIN
  FOREACH t IN ARRAY ARRAY['bots', 'bot_users', 'chats', 'messages', 'daily_stats', 'daily_active_users',
                           'stats_first_seen', 'audit_log', 'events_archive'] LOOP
    FOR i IN 0 .. 15 LOOP
      EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES WITH (MODULUS 16, REMAINDER %s)',
        t || '_p' || lpad(i::text, 2, '0'), t, i);
    END LOOP;
  END LOOP;
END
$$;
