-- mod_hello schema (MySQL / MariaDB): the result of every file in
-- sql/migrations/ (a test checks that the two agree). Idempotent.
-- A fresh install may load this file; scripts/migrate then records the
-- migrations as applied the first time it runs (see docs/operations.md).
CREATE TABLE IF NOT EXISTS hello_users (
    username      VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    date_of_birth DATE NOT NULL,
    updated_at    TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
    PRIMARY KEY (username)
) ENGINE=InnoDB;
