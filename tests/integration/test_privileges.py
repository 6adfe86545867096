"""Least privilege, tested as the application's own database user, and SQL
injection through the API, watched in MariaDB's general log.

The `hello` user (sql/grants.sql; password set by scripts/mariadb-sandbox
setup, see ht.MariaDB) may SELECT, INSERT and UPDATE hello_users and nothing
else. Every refusal below is checked twice: the client reports an
access-denied error, and root sees that nothing happened.
"""
import re
import subprocess
import urllib.parse

import pytest

import hellotest as ht

SECRET = "s3cr3t-value-only-root-may-read"
KEPT = {"keepAlice": "1970-01-01", "keepBob": "1985-06-15", "keepCarol": "2000-02-29"}
# MariaDB's access-denied errors: 1044 (database), 1045 (access, e.g. FILE),
# 1142 (command on a table), 1143 (column), 1227 (needs a global privilege),
# 1370 (routine), 1410 (GRANT), 1211 (CREATE USER / GRANT).
DENIED = re.compile(r"ERROR (1044|1045|1142|1143|1227|1370|1410|1211) .*denied|"
                    r"ERROR 1227 .*Access denied", re.S)


@pytest.fixture(scope="module")
def pdb(tmp_path_factory):
    """A MariaDB of this module's own, set up like the session's, with a
    table only root may read and a few rows of hello_users."""
    server = ht.MariaDB(tmp_path_factory.mktemp("privileges") / "mariadb")
    try:
        server.create()
        server.sql("CREATE TABLE secrets (id INT PRIMARY KEY, value VARCHAR(64)); "
                   f"INSERT INTO secrets VALUES (1, '{SECRET}')")
        for name, dob in KEPT.items():
            server.sql(f"INSERT INTO hello_users (username, date_of_birth) VALUES ('{name}', '{dob}')")
        yield server
    finally:
        server.stop()


def as_app(db, sql, database="hello"):
    """Runs sql with the mariadb client as the application's user over TCP:
    (exit code, stdout, stderr)."""
    proc = subprocess.run(
        ["mariadb", "--no-defaults", "-h127.0.0.1", f"-P{db.port}", "-uhello",
         f"-p{db.password}", "--batch", "--skip-column-names", database, "-e", sql],
        capture_output=True, text=True, timeout=30)
    return proc.returncode, proc.stdout, proc.stderr


def users_table(db):
    return db.sql("SELECT * FROM hello_users ORDER BY username")


def columns(db, table="hello_users"):
    return db.sql(f"SHOW COLUMNS FROM {table}")


def tables(db, database="hello"):
    return sorted(r[0] for r in db.sql("SHOW TABLES", database=database))


# ---- who the application is, and what it may do ---------------------------------------------

def test_app_user_is_hello_with_only_select_insert_update(pdb):
    rc, out, err = as_app(pdb, "SELECT CURRENT_USER(); SHOW GRANTS")
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[0] == "hello@127.0.0.1"
    grants = [re.sub(r" IDENTIFIED BY PASSWORD '[^']*'", "", g) for g in lines[1:]]
    assert sorted(grants) == sorted([
        "GRANT USAGE ON *.* TO `hello`@`127.0.0.1`",
        "GRANT SELECT, INSERT, UPDATE ON `hello`.`hello_users` TO `hello`@`127.0.0.1`",
    ]), grants


def test_app_user_can_select_insert_and_update_hello_users(pdb):
    rc, out, err = as_app(pdb, "SELECT username, date_of_birth FROM hello_users "
                               "WHERE username = 'keepAlice'")
    assert rc == 0, err
    assert out.split() == ["keepAlice", "1970-01-01"]
    rc, out, err = as_app(pdb, "INSERT INTO hello_users (username, date_of_birth) "
                               "VALUES ('privInsert', '1991-03-04')")
    assert rc == 0, err
    assert pdb.date_of_birth("privInsert") == "1991-03-04"
    rc, out, err = as_app(pdb, "UPDATE hello_users SET date_of_birth = '1992-05-06' "
                               "WHERE username = 'privInsert'")
    assert rc == 0, err
    assert pdb.date_of_birth("privInsert") == "1992-05-06"
    # The module's own upsert, as the module runs it.
    rc, out, err = as_app(pdb, "INSERT INTO hello_users (username, date_of_birth) "
                               "VALUES ('privInsert', '1993-07-08') "
                               "ON DUPLICATE KEY UPDATE date_of_birth = VALUES(date_of_birth)")
    assert rc == 0, err
    assert pdb.date_of_birth("privInsert") == "1993-07-08"


# ---- what it may not do ------------------------------------------------------------------------

def unchanged(db):
    """A snapshot (one root query) of everything the refused statements
    could touch: tables, databases, the columns and kept rows of
    hello_users, the secrets, the accounts and the app's grants, routines."""
    kept = ", ".join(f"'{n}'" for n in KEPT)
    return db.sql(
        "SHOW TABLES FROM hello; SHOW DATABASES; SHOW COLUMNS FROM hello.hello_users; "
        f"SELECT * FROM hello.hello_users WHERE username IN ({kept}) ORDER BY username; "
        "SELECT * FROM hello.secrets; SELECT user, host FROM mysql.user ORDER BY user, host; "
        "SHOW GRANTS FOR 'hello'@'127.0.0.1'; SHOW GRANTS FOR 'hello'@'localhost'; "
        "SELECT routine_name FROM information_schema.routines WHERE routine_schema = 'hello'; "
        "SELECT COUNT(*) FROM hello.hello_users", database="mysql")


REFUSED = {
    "drop-table": "DROP TABLE hello_users",
    "alter-table": "ALTER TABLE hello_users ADD COLUMN evil INT",
    "alter-drop-column": "ALTER TABLE hello_users DROP COLUMN date_of_birth",
    "create-table": "CREATE TABLE hello.evil (x INT)",
    "create-table-like": "CREATE TABLE evil LIKE hello_users",
    "truncate": "TRUNCATE TABLE hello_users",
    "delete-one": "DELETE FROM hello_users WHERE username = 'keepBob'",
    "delete-all": "DELETE FROM hello_users",
    "select-secrets": "SELECT * FROM hello.secrets",
    "select-mysql-user": "SELECT user, host, password FROM mysql.user",
    "insert-secrets": "INSERT INTO secrets VALUES (2, 'x')",
    "update-secrets": "UPDATE secrets SET value = 'x'",
    "drop-secrets": "DROP TABLE secrets",
    "rename-table": "RENAME TABLE hello_users TO hello_users_old",
    "create-index": "CREATE INDEX evil ON hello_users (date_of_birth)",
    "create-view": "CREATE VIEW evil AS SELECT * FROM hello_users",
    "create-procedure": "CREATE PROCEDURE evil() SELECT 1",
    "create-database": "CREATE DATABASE evil",
    "drop-database": "DROP DATABASE hello",
    "grant": "GRANT DELETE ON hello.hello_users TO 'hello'@'127.0.0.1'",
    "create-user": "CREATE USER 'evil'@'%' IDENTIFIED BY 'x'",
    "into-outfile": "SELECT * FROM hello_users INTO OUTFILE '/tmp/hello-privileges-outfile'",
    "set-global": "SET GLOBAL general_log = ON",
    "lock-tables": "LOCK TABLES hello_users WRITE",
}


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_app_user_is_refused(pdb, name):
    sql = REFUSED[name]
    before = unchanged(pdb)
    rc, out, err = as_app(pdb, sql)
    assert rc != 0, f"the application's user ran {sql!r}:\n{out}"
    assert DENIED.search(err), f"{sql!r} failed, but not for want of a privilege:\n{err}"
    assert SECRET not in out
    assert unchanged(pdb) == before, f"{sql!r} was refused but changed something"


def test_app_user_cannot_read_files(pdb):
    rc, out, err = as_app(pdb, "SELECT LOAD_FILE('/etc/passwd') IS NULL")
    assert rc == 0, err
    assert out.strip() == "1", "LOAD_FILE read a file without the FILE privilege"


def test_app_user_sees_no_other_table(pdb):
    rc, out, err = as_app(pdb, "SHOW TABLES")
    assert rc == 0, err
    assert out.split() == ["hello_users"]
    assert "secrets" in tables(pdb)


def test_delete_is_refused_until_grants_delete_sql_is_loaded(pdb):
    """The refusal of DELETE comes from the grant: with sql/grants-delete.sql
    the same statement works, and revoking it (as that file says) refuses it
    again."""
    pdb.sql("INSERT INTO hello_users (username, date_of_birth) VALUES ('privErase', '1990-01-01')")
    sql = "DELETE FROM hello_users WHERE username = 'privErase'"
    rc, out, err = as_app(pdb, sql)
    assert rc != 0 and DENIED.search(err), err
    assert pdb.date_of_birth("privErase") == "1990-01-01"
    try:
        pdb.sql((ht.REPO / "sql" / "grants-delete.sql").read_text())
        rc, out, err = as_app(pdb, sql)
        assert rc == 0, err
        assert pdb.date_of_birth("privErase") is None
    finally:
        pdb.sql("REVOKE DELETE ON hello_users FROM 'hello'@'localhost', 'hello'@'127.0.0.1'")
    rc, out, err = as_app(pdb, "DELETE FROM hello_users WHERE username = 'keepCarol'")
    assert rc != 0 and DENIED.search(err), err
    assert pdb.date_of_birth("keepCarol") == KEPT["keepCarol"]


# ---- SQL injection through the API, watched in the general log ----------------------------

INJECTED_NAMES = ["alice'--", "a' OR '1'='1", "x; DROP TABLE hello_users", '1" OR ""="',
                  "Robert'); DROP TABLE hello_users;--", "admin'#", "a' UNION SELECT value "
                  "FROM secrets--", "' OR 1=1 LIMIT 1 -- ", "\\'; SELECT SLEEP(5); --"]
INJECTED_DATES = ["2000-01-01'); DROP TABLE hello_users;--", "2000-01-01' OR '1'='1",
                  "1990-01-01'--", "2000-01-01\"; DELETE FROM hello_users; --",
                  "' UNION SELECT value FROM secrets --"]
# What must not reach the database in any form.
FRAGMENTS = ["DROP TABLE", "OR '1'='1", "' OR ", '" OR ', "'--", "UNION", "secrets", "SLEEP",
             "DELETE", "admin'", "LIMIT 1"] + INJECTED_NAMES + INJECTED_DATES


@pytest.fixture
def general_log(pdb, tmp_path):
    """Turns MariaDB's general log on (into a file of the test's own) and,
    whatever happens, off again; yields a function that turns it off and
    returns the log's text."""
    path = tmp_path / "general.log"
    pdb.sql(f"SET GLOBAL general_log_file = '{path}'; SET GLOBAL log_output = 'FILE'; "
            "SET GLOBAL general_log = ON", database="mysql")

    def text():
        pdb.sql("SET GLOBAL general_log = OFF", database="mysql")
        return path.read_text(errors="replace")

    try:
        yield text
    finally:
        pdb.sql("SET GLOBAL general_log = OFF", database="mysql")
        assert pdb.sql("SELECT @@GLOBAL.general_log", database="mysql") == [["0"]]


def test_injection_strings_answer_400_and_never_reach_the_database(pdb, general_log, tmp_path):
    before = users_table(pdb)
    server = ht.PinnedHttpd(tmp_path / "httpd", db=pdb)
    try:
        server.start()  # after the log is on: its connections and prepares are logged
        client = server.client()
        # A valid request first: the database is reached and the log works.
        r = client.put_date("/hello/Robert", "1990-05-17")
        assert r.status == 204, r
        assert client.get("/hello/Robert").status == 200
        answers = []
        for name in INJECTED_NAMES:
            path = "/hello/" + urllib.parse.quote(name, safe="")
            for method in ("GET", "HEAD", "PUT"):
                body = {"dateOfBirth": "1990-05-17"} if method == "PUT" else None
                r = client.request(method, path, body=body)
                answers.append((method, name, r.status))
                assert r.status == 400, (method, path, r)
                if method != "HEAD":
                    assert r.error == ht.R_USERNAME, (method, path, r)
        for value in INJECTED_DATES:
            r = client.put("/hello/Robert", {"dateOfBirth": value})
            answers.append(("PUT", value, r.status))
            assert r.status == 400, (value, r)
            assert r.error == ht.R_BAD_DATE, (value, r)
            r = client.put("/hello/" + urllib.parse.quote(INJECTED_NAMES[0], safe=""),
                           {"dateOfBirth": value})
            assert r.status == 400, (value, r)
        r = client.get("/hello/Robert")
        assert r.status == 200 and "Robert" in r.message
    finally:
        server.stop()
    log = general_log()
    # The log saw the valid requests: the statements were prepared with
    # placeholders and executed with the username as quoted data.
    assert re.search(r"Prepare\s+SELECT CAST\(date_of_birth AS CHAR\) FROM hello_users WHERE username = \?", log), log
    assert re.search(r"Prepare\s+INSERT INTO hello_users \(username, date_of_birth\) "
                     r"VALUES \(\?, \?\)", log), log
    assert re.search(r"Execute\s+INSERT INTO hello_users \(username, date_of_birth\) "
                     r"VALUES \('Robert', '1990-05-17'\)", log), log
    assert re.search(r"Execute\s+SELECT CAST\(date_of_birth AS CHAR\) FROM hello_users WHERE username = "
                     r"'Robert'", log), log
    # The username never travels as SQL text: only in Execute lines.
    robert = [line for line in log.splitlines() if "Robert" in line]
    assert robert
    for line in robert:
        assert "Execute\t" in line and "Query\t" not in line, (
            f"the username went to the database other than as a bound parameter: {line}")
    leaked = [f for f in FRAGMENTS if f.lower() in log.lower()]
    assert not leaked, f"the general log contains {leaked}:\n{log}"
    # The table is there and the rows of before are intact.
    assert "hello_users" in tables(pdb)
    after = users_table(pdb)
    assert [r for r in after if r[0] != "Robert"] == [r for r in before if r[0] != "Robert"]
    assert pdb.date_of_birth("Robert") == "1990-05-17"
    print(f"\n{len(answers)} injection attempts, all 400; general log {len(log)} bytes, "
          f"{log.count('Execute')} Execute lines")
