CREATE TABLE IF NOT EXISTS keygate_keys (
    id                   TEXT PRIMARY KEY,
    hash                 BLOB NOT NULL,
    user_id              TEXT NOT NULL,
    space_id             TEXT,
    name                 TEXT NOT NULL,
    scopes               TEXT NOT NULL,
    preview              TEXT NOT NULL,
    created_at           INTEGER NOT NULL,
    expires_at           INTEGER,
    revoked_at           INTEGER,
    previous_hash        BLOB,
    previous_valid_until INTEGER,
    last_used_at         INTEGER,
    use_count            INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS keygate_keys_user ON keygate_keys (user_id, created_at);
CREATE INDEX IF NOT EXISTS keygate_keys_space ON keygate_keys (space_id, created_at);
