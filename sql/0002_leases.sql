-- Which node may write a bot's stream. fence strictly increases each time the lease changes hands;
-- times are the database's clock, never a node's.
CREATE TABLE leases (
  bot_id text PRIMARY KEY,
  node_id text NOT NULL,
  fence bigint NOT NULL CHECK (fence >= 1),
  expires_at timestamptz NOT NULL,
  released boolean NOT NULL DEFAULT false
);
