-- The audit trail (SqlAuditSink): one row per decision, never a secret or a query string.
CREATE TABLE IF NOT EXISTS keygate_audit (
    id           BIGSERIAL PRIMARY KEY,
    at           TIMESTAMPTZ NOT NULL,
    outcome      TEXT NOT NULL,
    reason       TEXT,
    key_id       TEXT,
    user_id      TEXT,
    space_id     TEXT,
    target_space TEXT,
    method       TEXT NOT NULL,
    path         TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS keygate_audit_key ON keygate_audit (key_id, id);
CREATE INDEX IF NOT EXISTS keygate_audit_key_outcome ON keygate_audit (key_id, outcome, id);
CREATE INDEX IF NOT EXISTS keygate_audit_user ON keygate_audit (user_id, id);
CREATE INDEX IF NOT EXISTS keygate_audit_space ON keygate_audit (space_id, id);
CREATE INDEX IF NOT EXISTS keygate_audit_at ON keygate_audit (at);
-- Usage over time: allowed and denied counts per key, user and space, per minute, hour, day.
CREATE TABLE IF NOT EXISTS keygate_usage (
    kind        TEXT NOT NULL,
    owner       TEXT NOT NULL,
    granularity TEXT NOT NULL,
    bucket      TIMESTAMPTZ NOT NULL,
    allowed     BIGINT NOT NULL DEFAULT 0,
    denied      BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (kind, owner, granularity, bucket)
);
CREATE INDEX IF NOT EXISTS keygate_usage_bucket ON keygate_usage (granularity, bucket);
