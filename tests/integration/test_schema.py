"""The schema: sql/schema.sql and sql/migrations/ describe the same table,
and scripts/migrate is idempotent and refuses an edited migration."""
import shutil
import subprocess

import hellotest as ht


def migrate(server, *args, directory=None):
    cmd = [str(ht.REPO / "scripts" / "migrate"), "-d", "hello"]
    if directory:
        cmd += ["--dir", str(directory)]
    cmd += list(args) + ["--", "--no-defaults", "--protocol=socket",
                         f"--socket={server.dir / 'mysqld.sock'}", "-uroot"]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60)


def create_table(server, database="hello"):
    return server.sql("SHOW CREATE TABLE hello_users", database=database)[0][1]


def test_schema_sql_matches_the_migrations(own_db):
    # own_db was set up by scripts/migrate (through the sandbox's setup);
    # load schema.sql into a fresh database beside it and compare.
    own_db.sql("CREATE DATABASE fresh", database="mysql")
    own_db.sql((ht.REPO / "sql" / "schema.sql").read_text(), database="fresh")
    assert create_table(own_db, "fresh") == create_table(own_db)


def test_migrate_is_idempotent_and_records_versions(own_db):
    first = migrate(own_db)
    assert first.returncode == 0, first.stderr
    assert "0 applied" in first.stdout
    status = migrate(own_db, "--status")
    assert status.returncode == 0, status.stderr
    versions = sorted(p.stem for p in (ht.REPO / "sql" / "migrations").glob("[0-9]*.sql"))
    assert status.stdout.split() == [w for v in versions for w in ("applied", v)]
    rows = own_db.sql("SELECT version FROM schema_migrations ORDER BY version")
    assert [r[0] for r in rows] == versions


def test_migrate_refuses_an_edited_migration(own_db, tmp_path):
    edited = tmp_path / "migrations"
    shutil.copytree(ht.REPO / "sql" / "migrations", edited)
    first = sorted(edited.glob("*.sql"))[0]
    first.write_text(first.read_text() + "\n-- edited after it was applied\n")
    out = migrate(own_db, directory=edited)
    assert out.returncode != 0
    assert "different file" in out.stderr


def test_migrate_applies_a_pending_migration_while_rows_stay(own_db, tmp_path):
    own_db.sql("INSERT INTO hello_users (username, date_of_birth) VALUES ('keep', '1999-09-09')")
    more = tmp_path / "migrations"
    shutil.copytree(ht.REPO / "sql" / "migrations", more)
    (more / "900_test_index.sql").write_text(
        "ALTER TABLE hello_users ADD INDEX IF NOT EXISTS by_dob (date_of_birth), "
        "ALGORITHM=INPLACE, LOCK=NONE;\n")
    out = migrate(own_db, directory=more)
    assert out.returncode == 0, out.stderr
    assert "1 applied" in out.stdout
    assert "by_dob" in create_table(own_db)
    assert own_db.date_of_birth("keep") == "1999-09-09"
