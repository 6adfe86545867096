-- mod_hello schema for SQLite (DBDriver sqlite3), for a single host with no
-- database server. Idempotent. Load with:
--   sqlite3 /var/lib/mod_hello/hello.db < sql/sqlite/schema.sql
-- The file and its directory must be writable by Apache's user (SQLite
-- writes its journal beside the file). Usernames compare byte for byte
-- (BINARY), so "Alice" and "alice" are two users, as on MariaDB.
PRAGMA journal_mode = WAL;
CREATE TABLE IF NOT EXISTS hello_users (
    username      TEXT NOT NULL COLLATE BINARY PRIMARY KEY,
    date_of_birth TEXT NOT NULL,
    updated_at    TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
);
