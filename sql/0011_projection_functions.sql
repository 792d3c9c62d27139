-- JSON merge patch (RFC 7386): how BotConfigChanged patches a bot's configuration.
CREATE OR REPLACE FUNCTION bf_merge_patch(target jsonb, patch jsonb) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
  k text;
  v jsonb;
  result jsonb;
BEGIN
  IF patch IS NULL OR jsonb_typeof(patch) <> 'object' THEN
    RETURN patch;
  END IF;
  result := CASE WHEN jsonb_typeof(target) = 'object' THEN target ELSE '{}'::jsonb END;
  FOR k, v IN SELECT * FROM jsonb_each(patch) LOOP
    IF jsonb_typeof(v) = 'null' THEN
      result := result - k;
    ELSE
      result := result || jsonb_build_object(k, bf_merge_patch(result -> k, v));
    END IF;
  END LOOP;
  RETURN result;
END
$$;

-- An empty copy of a projection table for a rebuild: same columns, defaults, constraints and
-- indexes, the same hash partitions, the same row-level security policies and grants, so the
-- copy can take the live table's place unchanged.
CREATE OR REPLACE FUNCTION bf_clone_table(src text, dst text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  src_oid oid := format('%I', src)::regclass;
  n int;
  i int;
  pol record;
  g record;
  roles text;
  stmt text;
BEGIN
  SELECT count(*) INTO n FROM pg_inherits WHERE inhparent = src_oid;
  IF EXISTS (SELECT 1 FROM pg_partitioned_table WHERE partrelid = src_oid) THEN
    EXECUTE format('CREATE TABLE %I (LIKE %I INCLUDING ALL) PARTITION BY HASH (bot_id)', dst, src);
    FOR i IN 0 .. n - 1 LOOP
      EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES WITH (MODULUS %s, REMAINDER %s)',
        dst || '_p' || lpad(i::text, 2, '0'), dst, n, i);
    END LOOP;
  ELSE
    EXECUTE format('CREATE TABLE %I (LIKE %I INCLUDING ALL)', dst, src);
  END IF;
  IF (SELECT relrowsecurity FROM pg_class WHERE oid = src_oid) THEN
    EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', dst);
  END IF;
  IF (SELECT relforcerowsecurity FROM pg_class WHERE oid = src_oid) THEN
    EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', dst);
  END IF;
  FOR pol IN SELECT * FROM pg_policies WHERE schemaname = current_schema() AND tablename = src LOOP
    SELECT string_agg(CASE WHEN r = 'public' THEN 'PUBLIC' ELSE quote_ident(r) END, ', ') INTO roles FROM unnest(pol.roles) r;
    stmt := format('CREATE POLICY %I ON %I AS %s FOR %s TO %s', pol.policyname, dst, pol.permissive, pol.cmd, roles);
    IF pol.qual IS NOT NULL THEN stmt := stmt || format(' USING (%s)', pol.qual); END IF;
    IF pol.with_check IS NOT NULL THEN stmt := stmt || format(' WITH CHECK (%s)', pol.with_check); END IF;
    EXECUTE stmt;
  END LOOP;
  FOR g IN
    SELECT a.grantee, a.privilege_type
    FROM pg_class c, aclexplode(c.relacl) a
    WHERE c.oid = src_oid AND a.grantee <> c.relowner
  LOOP
    EXECUTE format('GRANT %s ON %I TO %s', g.privilege_type, dst,
      CASE WHEN g.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(g.grantee::regrole::text) END);
  END LOOP;
END
$$;

-- Blue/green switch-over of a rebuilt table, all in the caller's transaction: the live table goes
-- (with the views reading it, recreated by the caller), the shadow takes its name, and its
-- partitions take the live partitions' names.
CREATE OR REPLACE FUNCTION bf_swap_table(live text, shadow text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  p record;
BEGIN
  EXECUTE format('DROP TABLE %I CASCADE', live);
  EXECUTE format('ALTER TABLE %I RENAME TO %I', shadow, live);
  FOR p IN
    SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
    WHERE i.inhparent = format('%I', live)::regclass
  LOOP
    EXECUTE format('ALTER TABLE %I RENAME TO %I', p.relname, live || substr(p.relname, length(shadow) + 1));
  END LOOP;
END
$$;
