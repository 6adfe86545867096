-- Only for servers with `HelloAllowDelete On` (GDPR erasure): lets the
-- application's user delete rows of hello_users. Load after grants.sql:
--   mariadb hello < sql/grants-delete.sql
-- To turn erasure off again, set HelloAllowDelete Off, reload Apache, then:
--   REVOKE DELETE ON hello_users FROM 'hello'@'localhost', 'hello'@'127.0.0.1';
GRANT DELETE ON hello_users TO 'hello'@'localhost';
GRANT DELETE ON hello_users TO 'hello'@'127.0.0.1';
