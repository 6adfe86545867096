-- The application's database user: it may read, insert and update
-- hello_users, and nothing else (no DELETE, no DDL, no other table).
-- Load as an administrator, after schema.sql, in the application database:
--   mariadb hello < sql/grants.sql
-- The password is set separately (see docs/operations.md):
--   ALTER USER 'hello'@'localhost' IDENTIFIED BY '...';
CREATE USER IF NOT EXISTS 'hello'@'localhost';
CREATE USER IF NOT EXISTS 'hello'@'127.0.0.1';
GRANT SELECT, INSERT, UPDATE ON hello_users TO 'hello'@'localhost';
GRANT SELECT, INSERT, UPDATE ON hello_users TO 'hello'@'127.0.0.1';
