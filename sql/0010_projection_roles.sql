-- Roles of the projection database. Roles are cluster-wide while this migration runs once per
-- database, so each is created only when missing, and a concurrent creator (another database on
-- the same server migrating at the same moment) is tolerated.
--   botfleet_migrator  owns the projection tables (migrations, rebuild)
--   botfleet_projector writes projections for every owner (its own permissive policies)
--   botfleet_api       reads projections, bound by row-level security to app.owner_id
--   botfleet_auditor   reads the audit log of the owners listed in app.owner_ids
-- All are NOLOGIN: a deployment grants them to its login users (GRANT botfleet_api TO app_login).
DO $$
DECLARE
  r text;
BEGIN
  FOREACH r IN ARRAY ARRAY['botfleet_migrator', 'botfleet_projector', 'botfleet_api', 'botfleet_auditor'] LOOP
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
      BEGIN
        EXECUTE format('CREATE ROLE %I NOLOGIN', r);
      EXCEPTION WHEN duplicate_object OR unique_violation THEN
        NULL; -- created meanwhile by a concurrent migration of another database
      END;
    END IF;
  END LOOP;
END
$$;

GRANT USAGE, CREATE ON SCHEMA public TO botfleet_migrator;
GRANT USAGE ON SCHEMA public TO botfleet_projector, botfleet_api, botfleet_auditor;
