-- The audit log's hash chain (docs/projections.md, "Audit hash chain"). Each audit row carries the
-- hash of the archived event it records (event_hash), its place in its lane (chain_seq: 1, 2, 3...
-- per bot of the owner), the hash of the lane's previous row (prev_hash, NULL for the first) and
-- its own hash (row_hash) over all of that. The projector computes them (src/projections/
-- auditChain.ts); the functions below compute the very same hashes in SQL, for the rows already
-- there (backfilled below) and for tests that hold the two implementations to each other.
ALTER TABLE audit_log
  ADD COLUMN chain_seq integer,
  ADD COLUMN event_hash text,
  ADD COLUMN prev_hash text,
  ADD COLUMN row_hash text;

-- A JSON string of a text, exactly as JavaScript's JSON.stringify writes it (both escape ", \,
-- \b \f \n \r \t and other control characters as \u00xx, lowercase, and nothing else).
CREATE FUNCTION bf_json_text(t text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$ SELECT coalesce(to_json(t)::text, 'null') $$;

CREATE FUNCTION bf_instant_text(t timestamptz) RETURNS text
LANGUAGE sql IMMUTABLE AS $$ SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') $$;

-- sha256 of JSON.stringify(["bf-event-1", eventId, botId, version, type, schemaVersion, occurredAt,
-- correlationId, causationId, actor, data]) with data the jsonb's text. (Scalar arguments, not the
-- row type: a rebuild's swap drops and renames the tables, which would take such functions along.)
CREATE FUNCTION bf_audit_event_hash(event_id text, bot_id text, version integer, type text, schema_version integer,
  occurred_at timestamptz, correlation_id text, causation_id text, actor text, data jsonb) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
  SELECT encode(sha256(convert_to('["bf-event-1",' || concat_ws(',',
    bf_json_text(event_id), bf_json_text(bot_id), version::text, bf_json_text(type), schema_version::text,
    bf_json_text(bf_instant_text(occurred_at)), bf_json_text(correlation_id), bf_json_text(causation_id),
    bf_json_text(actor), bf_json_text(data::text)) || ']', 'UTF8')), 'hex')
$$;

-- sha256 of JSON.stringify(["bf-audit-1", prevHash, ownerId, botId, chainSeq, version, eventHash,
-- actor, actorKind, eventType, summary, occurredAt]) with summary the jsonb's text.
CREATE FUNCTION bf_audit_row_hash(prev_hash text, owner_id text, bot_id text, chain_seq integer, version integer,
  event_hash text, actor text, actor_kind text, event_type text, summary jsonb, occurred_at timestamptz) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
  SELECT encode(sha256(convert_to('["bf-audit-1",' || concat_ws(',',
    bf_json_text(prev_hash), bf_json_text(owner_id), bf_json_text(bot_id), chain_seq::text, version::text,
    bf_json_text(event_hash), bf_json_text(actor), bf_json_text(actor_kind), bf_json_text(event_type),
    bf_json_text(summary::text), bf_json_text(bf_instant_text(occurred_at))) || ']', 'UTF8')), 'hex')
$$;

-- Rows projected before this migration get their chain, lane by lane in version order: the same
-- chain the projector and a rebuild make.
DO $$
DECLARE
  r audit_log;
  lane text := NULL;
  seq integer := 0;
  prev text := NULL;
BEGIN
  FOR r IN SELECT * FROM audit_log ORDER BY bot_id, version LOOP
    IF lane IS DISTINCT FROM r.bot_id THEN
      lane := r.bot_id;
      seq := 0;
      prev := NULL;
    END IF;
    seq := seq + 1;
    r.chain_seq := seq;
    r.prev_hash := prev;
    r.event_hash := (SELECT bf_audit_event_hash(e.event_id, e.bot_id, e.version, e.type, e.schema_version, e.occurred_at,
                                                e.correlation_id, e.causation_id, e.actor, e.data)
                       FROM events_archive e WHERE e.bot_id = r.bot_id AND e.version = r.version);
    IF r.event_hash IS NULL THEN
      RAISE EXCEPTION 'audit row of bot % version % has no archived event: the audit log cannot be chained', r.bot_id, r.version
        USING HINT = 'Run botfleet rebuild audit with the previous release (it rebuilds the audit log from the archive), then migrate again.';
    END IF;
    r.row_hash := bf_audit_row_hash(r.prev_hash, r.owner_id, r.bot_id, r.chain_seq, r.version, r.event_hash, r.actor,
                                    r.actor_kind, r.event_type, r.summary, r.occurred_at);
    UPDATE audit_log SET chain_seq = r.chain_seq, prev_hash = r.prev_hash, event_hash = r.event_hash, row_hash = r.row_hash
     WHERE bot_id = r.bot_id AND version = r.version;
    prev := r.row_hash;
  END LOOP;
END
$$;

ALTER TABLE audit_log
  ALTER COLUMN chain_seq SET NOT NULL,
  ALTER COLUMN event_hash SET NOT NULL,
  ALTER COLUMN row_hash SET NOT NULL,
  ADD CONSTRAINT audit_log_chain_seq_positive CHECK (chain_seq >= 1);

-- Anchors: per owner, now and then (the node's periodic verification, or botfleet audit verify
-- --anchor), the heads of the lanes that moved since the owner's previous anchor, chained
-- (prev_anchor_hash) and signed with a key the database does not hold (HMAC-SHA256 with a key
-- derived from BOTFLEET_SECRET_KEY). Only the auditor (and the tables' owner) may insert; nobody
-- but the owner may change or delete: the projector role cannot rewrite history and its anchors.
CREATE TABLE audit_anchors (
  owner_id         text NOT NULL CHECK (owner_id ~ '^[A-Za-z0-9_.@-]{1,64}$'),
  seq              integer NOT NULL CHECK (seq >= 1),
  -- [[bot_id, chain_seq, row_hash], ...] sorted by bot_id
  lanes            jsonb NOT NULL,
  prev_anchor_hash text,
  anchor_hash      text NOT NULL,
  signature        text NOT NULL,
  taken_at         timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (owner_id, seq)
);
ALTER TABLE audit_anchors ENABLE ROW LEVEL SECURITY;
CREATE POLICY auditor_owners ON audit_anchors FOR ALL TO botfleet_auditor
  USING (owner_id = ANY ((SELECT bf_session_owner_ids())::text[]))
  WITH CHECK (owner_id = ANY ((SELECT bf_session_owner_ids())::text[]));
-- the projector may list the anchored owners (so a verification finds an owner whose rows are gone)
CREATE POLICY projector_read ON audit_anchors FOR SELECT TO botfleet_projector USING (true);
GRANT SELECT, INSERT ON audit_anchors TO botfleet_auditor;
GRANT SELECT ON audit_anchors TO botfleet_projector;
-- not the node's own store: only what the auditor role may do (the default privileges of 0040 gave more)
REVOKE ALL ON audit_anchors FROM botfleet_runtime;
ALTER TABLE audit_anchors OWNER TO botfleet_migrator;

-- The result of each verification run (periodic on the nodes, or botfleet audit verify --record):
-- what `botfleet status` shows. Fleet-level, not owner data.
CREATE TABLE audit_verifications (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  node_id     text NOT NULL,
  started_at  timestamptz NOT NULL,
  finished_at timestamptz NOT NULL DEFAULT now(),
  ok          boolean NOT NULL,
  owners      integer NOT NULL,
  rows_checked bigint NOT NULL,
  anchors     integer NOT NULL,
  -- the first broken link found (owner, bot, position, version, what, expected, found), NULL when ok
  first_break jsonb
);
GRANT SELECT, INSERT ON audit_verifications TO botfleet_auditor;
REVOKE ALL ON audit_verifications FROM botfleet_runtime;
GRANT SELECT ON audit_verifications TO botfleet_runtime, botfleet_projector;
GRANT USAGE ON SEQUENCE audit_verifications_id_seq TO botfleet_auditor;
ALTER TABLE audit_verifications OWNER TO botfleet_migrator;

ALTER FUNCTION bf_json_text(text) OWNER TO botfleet_migrator;
ALTER FUNCTION bf_instant_text(timestamptz) OWNER TO botfleet_migrator;
ALTER FUNCTION bf_audit_event_hash(text, text, integer, text, integer, timestamptz, text, text, text, jsonb) OWNER TO botfleet_migrator;
ALTER FUNCTION bf_audit_row_hash(text, text, text, integer, integer, text, text, text, text, jsonb, timestamptz) OWNER TO botfleet_migrator;
