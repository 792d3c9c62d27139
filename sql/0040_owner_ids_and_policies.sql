-- Owner ids, row-level security and least privilege (docs/projections.md, "Roles and row-level
-- security").
--
-- 1. Owner ids are 1 to 64 of A-Z a-z 0-9 _ . @ - (src/events/ownerId.ts). Rows recorded before
--    with another owner id ('' above all: it is what an unset per-transaction setting reads back
--    as) are refused here, named, before any constraint is added: the migration stops and changes
--    nothing until they are dealt with.
DO $$
DECLARE
  t text;
  n bigint;
  ex text[];
  per_table text[] := '{}';
  examples text[] := '{}';
  total bigint := 0;
BEGIN
  FOREACH t IN ARRAY ARRAY['owners', 'bots', 'bot_users', 'chats', 'messages', 'daily_stats', 'daily_active_users',
                           'stats_first_seen', 'audit_log', 'events_archive'] LOOP
    EXECUTE format('SELECT count(*), (array_agg(DISTINCT owner_id))[1:5] FROM %I WHERE owner_id !~ %L', t, '^[A-Za-z0-9_.@-]{1,64}$')
      INTO n, ex;
    IF n > 0 THEN
      total := total + n;
      per_table := per_table || format('%s: %s', t, n);
      examples := ARRAY(SELECT DISTINCT unnest(examples || ex) ORDER BY 1);
    END IF;
  END LOOP;
  IF total > 0 THEN
    RAISE EXCEPTION '% rows have an owner id outside the safe alphabet (1 to 64 of A-Z a-z 0-9 _ . @ -): % distinct owner ids, e.g. % (rows per table: %)',
      total, cardinality(examples), array_to_string(ARRAY(SELECT quote_literal(e) FROM unnest(examples[1:5]) e), ', '), array_to_string(per_table, ', ')
      USING HINT = 'As the tables'' owner, move those rows to a valid owner id (UPDATE ... SET owner_id = ''new-id'' in each table named) or delete them, then run botfleet migrate again. Their events keep the old id: the projectors now dead-letter such a registration.';
  END IF;
END
$$;

DO $$
DECLARE
  t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['owners', 'bots', 'bot_users', 'chats', 'messages', 'daily_stats', 'daily_active_users',
                           'stats_first_seen', 'audit_log', 'events_archive'] LOOP
    EXECUTE format('ALTER TABLE %I ADD CONSTRAINT %I CHECK (owner_id ~ %L)', t, t || '_owner_id_valid', '^[A-Za-z0-9_.@-]{1,64}$');
  END LOOP;
END
$$;

-- 2. The session's owner for the api role: '' and unset alike mean "no owner" (set_config(..., true)
--    leaves '' behind on a pooled connection once its transaction ends, not NULL).
CREATE FUNCTION bf_session_owner() RETURNS text
LANGUAGE sql STABLE AS $$ SELECT NULLIF(current_setting('app.owner_id', true), '') $$;

-- The auditor's owners: app.owner_ids holds a JSON array of owner ids ('["a","b"]'), parsed as
-- JSON, never split on a separator. Unset or '' = none. Anything else (the old comma list, a JSON
-- object, a non-string element) is an error, so a caller using the wrong format is told instead of
-- being shown nothing or too much.
CREATE FUNCTION bf_session_owner_ids() RETURNS text[]
LANGUAGE plpgsql STABLE AS $$
DECLARE
  s text := current_setting('app.owner_ids', true);
  j jsonb;
BEGIN
  IF s IS NULL OR s = '' THEN
    RETURN '{}';
  END IF;
  BEGIN
    j := s::jsonb;
  EXCEPTION WHEN others THEN
    j := NULL;
  END;
  IF j IS NULL OR jsonb_typeof(j) <> 'array' OR EXISTS (SELECT 1 FROM jsonb_array_elements(j) e WHERE jsonb_typeof(e) <> 'string') THEN
    RAISE EXCEPTION 'app.owner_ids must be a JSON array of owner ids, e.g. ["owner-a","owner-b"]; got %', left(s, 80)
      USING ERRCODE = '22023';
  END IF;
  RETURN ARRAY(SELECT jsonb_array_elements_text(j));
END
$$;

-- The policies read the settings once per statement (a scalar subquery is an init plan), not once
-- per row.
DO $$
DECLARE
  t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['owners', 'bots', 'bot_users', 'chats', 'messages', 'daily_stats', 'daily_active_users',
                           'stats_first_seen', 'audit_log', 'events_archive'] LOOP
    EXECUTE format('DROP POLICY api_owner ON %I', t);
    EXECUTE format('CREATE POLICY api_owner ON %I FOR ALL TO botfleet_api '
      'USING (owner_id = (SELECT bf_session_owner())) WITH CHECK (owner_id = (SELECT bf_session_owner()))', t);
  END LOOP;
END
$$;

DROP POLICY auditor_owners ON audit_log;
CREATE POLICY auditor_owners ON audit_log FOR SELECT TO botfleet_auditor
  USING (owner_id = ANY ((SELECT bf_session_owner_ids())::text[]));

-- The auditor verifies the audit hash chain against the archived events behind the audit rows it
-- sees, and only those: no traffic events. (A function, not the subquery itself, in the policy: a
-- rebuild's swap drops audit_log, which would take a policy naming it along.)
CREATE FUNCTION bf_is_audited(b text, v integer) RETURNS boolean
LANGUAGE sql STABLE AS $$ SELECT EXISTS (SELECT 1 FROM audit_log a WHERE a.bot_id = b AND a.version = v) $$;
CREATE POLICY auditor_owners ON events_archive FOR SELECT TO botfleet_auditor
  USING (owner_id = ANY ((SELECT bf_session_owner_ids())::text[]) AND bf_is_audited(bot_id, version));
GRANT SELECT ON events_archive TO botfleet_auditor;

-- 3. The archive and the audit log are append-only for the projector: it only ever inserts them
--    (ON CONFLICT DO NOTHING), so a session running as the projector cannot rewrite history.
--    Rewrites need the tables' owner (botfleet_migrator), which no app path uses.
REVOKE UPDATE, DELETE ON audit_log, events_archive FROM botfleet_projector;

-- 4. The node's own stores (the Postgres event log, leases, inboxes, snapshots, polling offsets,
--    the fleet directory): granted to botfleet_runtime, so a node can log in as a role that owns
--    nothing (member of botfleet_runtime, botfleet_projector, botfleet_api, botfleet_auditor) while
--    a separate migration login (MIGRATION_DATABASE_URL) applies migrations.
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'botfleet_runtime') THEN
    BEGIN
      CREATE ROLE botfleet_runtime NOLOGIN;
    EXCEPTION WHEN duplicate_object OR unique_violation THEN
      NULL; -- created meanwhile by a concurrent migration of another database
    END;
  END IF;
END
$$;
GRANT USAGE ON SCHEMA public TO botfleet_runtime;
GRANT SELECT, INSERT, UPDATE, DELETE ON events, streams, leases, consumer_groups, pending, dead_letters,
  inbox_heads, inbox_entries, inbox_dead_letters, actor_snapshots, polling_offsets, fleet_bots TO botfleet_runtime;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO botfleet_runtime;
GRANT SELECT ON schema_migrations TO botfleet_runtime;
-- Tables and sequences later migrations create (as this same migration login) are the node's
-- too, so a store added later works for a login that owns nothing. Row-level security still
-- binds: a table with RLS and no policy for botfleet_runtime shows it no row.
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO botfleet_runtime;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO botfleet_runtime;

ALTER FUNCTION bf_session_owner() OWNER TO botfleet_migrator;
ALTER FUNCTION bf_session_owner_ids() OWNER TO botfleet_migrator;
ALTER FUNCTION bf_is_audited(text, integer) OWNER TO botfleet_migrator;
