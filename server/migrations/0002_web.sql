-- The web app: sign-in links, browser sessions and sign-in rate-limit counters.

-- A magic link's token is 32 random bytes; only its SHA-256 is kept. The email is the address
-- the link was sent to (the account is made from it at the first sign-in). Single use: used_at.
CREATE TABLE sign_in_links (
    token_hash TEXT PRIMARY KEY,
    email TEXT NOT NULL,
    language TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    used_at TIMESTAMPTZ
);
CREATE INDEX sign_in_links_expires ON sign_in_links (expires_at);
CREATE INDEX sign_in_links_email ON sign_in_links (email);

-- A signed-in browser. The cookie carries a random id; only its SHA-256 is kept here, so
-- signing out (or deleting the row) ends the session at once.
CREATE TABLE web_sessions (
    id_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at TIMESTAMPTZ NOT NULL,
    last_seen_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX web_sessions_user ON web_sessions (user_id);
CREATE INDEX web_sessions_expires ON web_sessions (expires_at);

-- One row per sign-in request, per scope ('address' or 'ip'); key_hash is an HMAC of the
-- address or IP under the server's secret, never the value itself. Rows older than the
-- window (one hour) are deleted as new ones come in.
CREATE TABLE sign_in_attempts (
    id TEXT PRIMARY KEY,
    scope TEXT NOT NULL,
    key_hash TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX sign_in_attempts_key ON sign_in_attempts (scope, key_hash, created_at);
CREATE INDEX sign_in_attempts_created ON sign_in_attempts (created_at);
