-- REST API access (docs/api.md): owners who may hold API tokens, and the tokens themselves.
-- A token is shown once when made; only a SHA-256 of its secret part is kept (the secret is 256
-- random bits, so a fast hash is enough: nothing to brute-force). Admin tokens have no owner.
-- Neither table is readable by botfleet_api: tokens are checked by the node's own login before a
-- request's transaction takes the api role.
CREATE TABLE api_owners (
  owner_id   text PRIMARY KEY CHECK (owner_id ~ '^[A-Za-z0-9_.@-]{1,64}$'),
  name       text,
  created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE api_tokens (
  token_id     text PRIMARY KEY CHECK (token_id ~ '^[0-9a-f]{16}$'),
  owner_id     text REFERENCES api_owners (owner_id),
  scope        text NOT NULL CHECK (scope IN ('read', 'write', 'admin')),
  secret_hash  text NOT NULL,
  label        text,
  created_at   timestamptz NOT NULL DEFAULT now(),
  expires_at   timestamptz,
  revoked_at   timestamptz,
  last_used_at timestamptz,
  -- an admin token belongs to no owner; every other token to exactly one
  CHECK ((scope = 'admin') = (owner_id IS NULL))
);
CREATE INDEX api_tokens_owner_idx ON api_tokens (owner_id);

GRANT SELECT, INSERT, UPDATE ON api_owners, api_tokens TO botfleet_runtime;
REVOKE ALL ON api_owners, api_tokens FROM botfleet_api, botfleet_projector, botfleet_auditor;
