-- Consumer groups over partition logs, with the semantics of Redis Streams groups.
CREATE TABLE consumer_groups (
  grp text NOT NULL,
  partition smallint NOT NULL,
  -- (last_tx, last_position): the last entry delivered to the group, in partition-log order
  last_tx xid8 NOT NULL,
  last_position bigint NOT NULL,
  PRIMARY KEY (grp, partition)
);

-- Entries delivered and not yet acked (the PEL).
CREATE TABLE pending (
  grp text NOT NULL,
  partition smallint NOT NULL,
  position bigint NOT NULL,
  tx xid8 NOT NULL,
  bot_id text NOT NULL,
  consumer text NOT NULL,
  delivered_at timestamptz NOT NULL,
  delivery_count integer NOT NULL,
  PRIMARY KEY (grp, partition, position)
);

CREATE TABLE dead_letters (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  partition smallint NOT NULL,
  grp text NOT NULL,
  position text NOT NULL,
  reason text NOT NULL,
  delivery_count integer NOT NULL,
  raw jsonb NOT NULL,
  at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX dead_letters_partition ON dead_letters (partition, id);
