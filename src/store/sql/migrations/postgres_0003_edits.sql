-- Keys that can be paused, and carry a rate limit and a quota of their own.
ALTER TABLE keygate_keys
    ADD COLUMN disabled BOOLEAN NOT NULL DEFAULT FALSE,
    ADD COLUMN rate_count BIGINT,
    ADD COLUMN rate_period_ms BIGINT,
    ADD COLUMN rate_burst BIGINT,
    ADD COLUMN quota_limit BIGINT,
    ADD COLUMN quota_refill TEXT;
