-- The application's own schema: keys belong to rows of its `users` table.
CREATE TABLE IF NOT EXISTS users (id INTEGER PRIMARY KEY, email TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY,
    hash BLOB NOT NULL,
    user_id INTEGER NOT NULL REFERENCES users (id),
    space_id TEXT,
    name TEXT NOT NULL,
    scopes TEXT NOT NULL,
    preview TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER,
    revoked_at INTEGER,
    previous_hash BLOB,
    previous_valid_until INTEGER,
    last_used_at INTEGER,
    use_count INTEGER NOT NULL DEFAULT 0,
    disabled INTEGER NOT NULL DEFAULT 0,
    rate_count INTEGER,
    rate_period_ms INTEGER,
    rate_burst INTEGER,
    quota_limit INTEGER,
    quota_refill TEXT
);
CREATE INDEX IF NOT EXISTS api_keys_user ON api_keys (user_id, created_at);
CREATE INDEX IF NOT EXISTS api_keys_space ON api_keys (space_id, created_at);
