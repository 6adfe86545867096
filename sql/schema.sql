-- mod_hello schema (MySQL / MariaDB). Idempotent: safe to load again.
-- The username is the primary key with a binary (case-sensitive) collation:
-- "Alice" and "alice" are two users.
CREATE TABLE IF NOT EXISTS hello_users (
    username      VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    date_of_birth DATE NOT NULL,
    PRIMARY KEY (username)
) ENGINE=InnoDB;
