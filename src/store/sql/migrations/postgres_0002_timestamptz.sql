-- Times become PostgreSQL's own type. The stored microseconds since the Unix epoch convert
-- exactly: TIMESTAMPTZ keeps microseconds.
ALTER TABLE keygate_keys
    ALTER COLUMN created_at TYPE TIMESTAMPTZ
        USING TIMESTAMPTZ 'epoch' + created_at * INTERVAL '1 microsecond',
    ALTER COLUMN expires_at TYPE TIMESTAMPTZ
        USING TIMESTAMPTZ 'epoch' + expires_at * INTERVAL '1 microsecond',
    ALTER COLUMN revoked_at TYPE TIMESTAMPTZ
        USING TIMESTAMPTZ 'epoch' + revoked_at * INTERVAL '1 microsecond',
    ALTER COLUMN previous_valid_until TYPE TIMESTAMPTZ
        USING TIMESTAMPTZ 'epoch' + previous_valid_until * INTERVAL '1 microsecond',
    ALTER COLUMN last_used_at TYPE TIMESTAMPTZ
        USING TIMESTAMPTZ 'epoch' + last_used_at * INTERVAL '1 microsecond';
