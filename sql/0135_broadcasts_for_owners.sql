-- Broadcasts in the REST API (docs/api.md "Broadcasts"): owners create, read and control their
-- own broadcasts as botfleet_api, so row-level security keys them by owner like every projection
-- (sql/0013, 0040). A recipient row belongs to the broadcast it is of: the api role sees (and
-- adds) only recipients of broadcasts it can see. The node's runner (botfleet_runtime) runs every
-- owner's broadcasts.
ALTER TABLE broadcasts ADD CONSTRAINT broadcasts_owner_id_valid CHECK (owner_id ~ '^[A-Za-z0-9_.@-]{1,64}$');
ALTER TABLE broadcasts ENABLE ROW LEVEL SECURITY;
ALTER TABLE broadcast_recipients ENABLE ROW LEVEL SECURITY;

CREATE POLICY api_owner ON broadcasts FOR ALL TO botfleet_api
  USING (owner_id = (SELECT bf_session_owner())) WITH CHECK (owner_id = (SELECT bf_session_owner()));
CREATE POLICY api_owner ON broadcast_recipients FOR ALL TO botfleet_api
  USING (EXISTS (SELECT 1 FROM broadcasts b WHERE b.broadcast_id = broadcast_recipients.broadcast_id))
  WITH CHECK (EXISTS (SELECT 1 FROM broadcasts b WHERE b.broadcast_id = broadcast_recipients.broadcast_id));
CREATE POLICY runtime_all ON broadcasts FOR ALL TO botfleet_runtime USING (true) WITH CHECK (true);
CREATE POLICY runtime_all ON broadcast_recipients FOR ALL TO botfleet_runtime USING (true) WITH CHECK (true);

GRANT SELECT, INSERT, UPDATE ON broadcasts, broadcast_recipients TO botfleet_api;
GRANT USAGE, SELECT ON SEQUENCE broadcasts_broadcast_id_seq TO botfleet_api;
CREATE INDEX broadcasts_owner ON broadcasts (owner_id, broadcast_id);
