CREATE TABLE IF NOT EXISTS keygate_keys (
    id                   TEXT PRIMARY KEY,
    hash                 BYTEA NOT NULL,
    user_id              TEXT NOT NULL,
    space_id             TEXT,
    name                 TEXT NOT NULL,
    scopes               TEXT NOT NULL,
    preview              TEXT NOT NULL,
    created_at           BIGINT NOT NULL,
    expires_at           BIGINT,
    revoked_at           BIGINT,
    previous_hash        BYTEA,
    previous_valid_until BIGINT,
    last_used_at         BIGINT,
    use_count            BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS keygate_keys_user ON keygate_keys (user_id, created_at);
CREATE INDEX IF NOT EXISTS keygate_keys_space ON keygate_keys (space_id, created_at);
