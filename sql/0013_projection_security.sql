-- Row-level security on every table holding owner data, grants on parent tables only: a
-- partition has no grant, so querying it directly is refused instead of bypassing the policy.
DO $$
DECLARE
  t text;
  p record;
BEGIN
  FOREACH t IN ARRAY ARRAY['owners', 'bots', 'bot_users', 'chats', 'messages', 'daily_stats', 'daily_active_users',
                           'stats_first_seen', 'audit_log', 'events_archive'] LOOP
    EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
    EXECUTE format('CREATE POLICY api_owner ON %I FOR ALL TO botfleet_api '
      'USING (owner_id = current_setting(''app.owner_id'', true)) '
      'WITH CHECK (owner_id = current_setting(''app.owner_id'', true))', t);
    EXECUTE format('CREATE POLICY projector_all ON %I FOR ALL TO botfleet_projector USING (true) WITH CHECK (true)', t);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %I TO botfleet_projector', t);
    EXECUTE format('GRANT SELECT ON %I TO botfleet_api', t);
    -- the migration owner owns the tables and their partitions (owners bypass RLS by design)
    EXECUTE format('ALTER TABLE %I OWNER TO botfleet_migrator', t);
    FOR p IN SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = format('%I', t)::regclass LOOP
      EXECUTE format('ALTER TABLE %I OWNER TO botfleet_migrator', p.relname);
    END LOOP;
  END LOOP;
END
$$;

CREATE POLICY auditor_owners ON audit_log FOR SELECT TO botfleet_auditor
  USING (owner_id = ANY (string_to_array(current_setting('app.owner_ids', true), ',')));
GRANT SELECT ON audit_log TO botfleet_auditor;

GRANT SELECT, INSERT, UPDATE, DELETE ON projection_checkpoints TO botfleet_projector;
GRANT SELECT ON projection_checkpoints TO botfleet_api, botfleet_auditor;
ALTER TABLE projection_checkpoints OWNER TO botfleet_migrator;
ALTER FUNCTION bf_merge_patch(jsonb, jsonb) OWNER TO botfleet_migrator;
ALTER FUNCTION bf_clone_table(text, text) OWNER TO botfleet_migrator;
ALTER FUNCTION bf_swap_table(text, text) OWNER TO botfleet_migrator;
