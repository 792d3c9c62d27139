-- Views for ops. security_invoker: a view reads with the caller's rights, so row-level security
-- applies to it (a plain view would read with its owner's rights and see every owner's rows).
-- Kept in a function because a rebuild's switch-over drops and recreates them.
CREATE OR REPLACE FUNCTION bf_create_projection_views() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  -- bots with their state, last activity, inbox lag (update received -> handled) and projection lag
  -- (event occurred -> projected, at the last commit of the bot's log partition)
  CREATE OR REPLACE VIEW fleet_overview WITH (security_invoker = true) AS
    SELECT b.bot_id, b.owner_id, b.name, b.kind, b.mode, b.state, b.version,
           b.last_event_at, b.last_activity_at, b.inbox_lag_ms,
           (SELECT round(extract(epoch FROM (c.updated_at - c.last_event_at)) * 1000)::bigint
              FROM projection_checkpoints c
             WHERE c.projection = 'bots' AND c.log_partition = b.log_partition) AS projection_lag_ms
      FROM bots b;
  CREATE OR REPLACE VIEW bot_daily_activity WITH (security_invoker = true) AS
    SELECT s.bot_id, b.name, s.owner_id, s.day, s.messages_in, s.messages_out, s.active_users, s.new_users
      FROM daily_stats s JOIN bots b USING (bot_id);
  CREATE OR REPLACE VIEW top_chats WITH (security_invoker = true) AS
    SELECT * FROM (
      SELECT c.bot_id, c.owner_id, c.chat_id, c.chat_type, c.messages_in, c.messages_out, c.last_message_at,
             rank() OVER (PARTITION BY c.bot_id ORDER BY c.messages_in + c.messages_out DESC) AS rank
        FROM chats c) ranked
     WHERE rank <= 10;
  GRANT SELECT ON fleet_overview, bot_daily_activity, top_chats TO botfleet_api;
END
$$;

SELECT bf_create_projection_views();
ALTER FUNCTION bf_create_projection_views() OWNER TO botfleet_migrator;
ALTER VIEW fleet_overview OWNER TO botfleet_migrator;
ALTER VIEW bot_daily_activity OWNER TO botfleet_migrator;
ALTER VIEW top_chats OWNER TO botfleet_migrator;
