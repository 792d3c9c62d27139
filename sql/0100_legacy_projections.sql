-- What the legacy import brings (LegacyRecordImported, docs/import.md) as the projections show it,
-- beside bot_users and chats (which imported users and chats reach too). Both tables belong to
-- the `users` projection: written in the same transactions, rebuilt with it
-- (`botfleet rebuild users` fills them for imports recorded before this migration).
--
-- bot_sessions: each telegraf session as the bot holds it now (imported, then changed by
--   SessionChanged merge patches), keyed as the runtime keys it (`<from>:<chat>`, or a custom key).
-- imported_records: every imported record as the file held it, latest import per key.

-- Applies merge patches (a JSON array of them) in order; NULL base: no session yet.
CREATE OR REPLACE FUNCTION bf_merge_patches(base jsonb, patches jsonb) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
  p jsonb;
  result jsonb := base;
BEGIN
  FOR p IN SELECT value FROM jsonb_array_elements(patches) LOOP
    result := bf_merge_patch(result, p);
  END LOOP;
  RETURN result;
END
$$;
ALTER FUNCTION bf_merge_patches(jsonb, jsonb) OWNER TO botfleet_migrator;

CREATE TABLE bot_sessions (
  bot_id       text NOT NULL,
  session_key  text NOT NULL,
  owner_id     text NOT NULL,
  -- the user and chat of a `<from>:<chat>` key; null for a custom key
  user_id      bigint,
  chat_id      bigint,
  data         jsonb NOT NULL,
  updated_at   timestamptz NOT NULL,
  version      integer NOT NULL,
  PRIMARY KEY (bot_id, session_key)
) PARTITION BY HASH (bot_id);

CREATE TABLE imported_records (
  bot_id       text NOT NULL,
  collection   text NOT NULL,
  record_key   text NOT NULL,
  owner_id     text NOT NULL,
  record       jsonb,
  source       text NOT NULL,
  checksum     text NOT NULL,
  import_id    text NOT NULL,
  imported_at  timestamptz NOT NULL,
  version      integer NOT NULL,
  PRIMARY KEY (bot_id, collection, record_key)
) PARTITION BY HASH (bot_id);

DO $$
DECLARE
  t text;
  i int;
  p record;
BEGIN
  FOREACH t IN ARRAY ARRAY['bot_sessions', 'imported_records'] LOOP
    FOR i IN 0 .. 15 LOOP
      EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES WITH (MODULUS 16, REMAINDER %s)',
        t || '_p' || lpad(i::text, 2, '0'), t, i);
    END LOOP;
    -- owner ids and row-level security as every projection table (sql/0013, 0040): an owner sees its own rows
    EXECUTE format('ALTER TABLE %I ADD CONSTRAINT %I CHECK (owner_id ~ %L)', t, t || '_owner_id_valid', '^[A-Za-z0-9_.@-]{1,64}$');
    EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
    EXECUTE format('CREATE POLICY api_owner ON %I FOR ALL TO botfleet_api '
      'USING (owner_id = (SELECT bf_session_owner())) WITH CHECK (owner_id = (SELECT bf_session_owner()))', t);
    EXECUTE format('CREATE POLICY projector_all ON %I FOR ALL TO botfleet_projector USING (true) WITH CHECK (true)', t);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %I TO botfleet_projector', t);
    EXECUTE format('GRANT SELECT ON %I TO botfleet_api', t);
    EXECUTE format('ALTER TABLE %I OWNER TO botfleet_migrator', t);
    FOR p IN SELECT c.relname FROM pg_inherits h JOIN pg_class c ON c.oid = h.inhrelid WHERE h.inhparent = format('%I', t)::regclass LOOP
      EXECUTE format('ALTER TABLE %I OWNER TO botfleet_migrator', p.relname);
    END LOOP;
  END LOOP;
END
$$;
