-- Expand: when each row was last written, for support and audits. The
-- module names its columns, so old and new builds serve alike while this
-- runs; INSTANT adds the column without copying or locking the table.
ALTER TABLE hello_users
    ADD COLUMN IF NOT EXISTS updated_at TIMESTAMP NOT NULL
        DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
    ALGORITHM=INSTANT;
