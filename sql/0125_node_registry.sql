-- The nodes sharing the fleet (docs/operations.md, "Adding and removing nodes"). Each node upserts
-- its row at start and beats every LEASE_RENEW_MS; `botfleet status` shows the rows and flags a node
-- whose heartbeat is older than its lease TTL. Nodes place bots by rendezvous hashing over the rows
-- that still beat: the table is only a placement hint, the lease stays what makes a node the writer.
-- heartbeat_at is the database's clock (now()), so nodes with skewed clocks still agree on ages.
CREATE TABLE fleet_nodes (
  node_id      text PRIMARY KEY,
  version      text NOT NULL,
  -- the event types and schema versions this node reads, {"BotStopped": 1, ...}
  event_versions jsonb NOT NULL DEFAULT '{}'::jsonb,
  lease_ttl_ms integer NOT NULL,
  bots_held    integer NOT NULL DEFAULT 0,
  started_at   timestamptz NOT NULL DEFAULT now(),
  heartbeat_at timestamptz NOT NULL DEFAULT now(),
  -- set by a graceful stop: its bots go to the others at once, without waiting for the TTL
  stopped_at   timestamptz
);

-- A node that found events it cannot read in a bot's stream (written by a newer version) refuses
-- the bot: it is placed among the other nodes until this node starts again (its refusals are
-- cleared then: it may be the newer version by now).
CREATE TABLE bot_refusals (
  bot_id     text NOT NULL,
  node_id    text NOT NULL,
  reason     text NOT NULL,
  refused_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (bot_id, node_id)
);
