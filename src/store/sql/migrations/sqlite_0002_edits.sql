-- Keys that can be paused, and carry a rate limit and a quota of their own.
ALTER TABLE keygate_keys ADD COLUMN disabled INTEGER NOT NULL DEFAULT 0;
ALTER TABLE keygate_keys ADD COLUMN rate_count INTEGER;
ALTER TABLE keygate_keys ADD COLUMN rate_period_ms INTEGER;
ALTER TABLE keygate_keys ADD COLUMN rate_burst INTEGER;
ALTER TABLE keygate_keys ADD COLUMN quota_limit INTEGER;
ALTER TABLE keygate_keys ADD COLUMN quota_refill TEXT;
