-- The baseline: the table of dates of birth, keyed by a case-sensitive
-- username ("Alice" and "alice" are two users).
CREATE TABLE IF NOT EXISTS hello_users (
    username      VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    date_of_birth DATE NOT NULL,
    PRIMARY KEY (username)
) ENGINE=InnoDB;
