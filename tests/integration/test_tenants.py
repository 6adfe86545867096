"""Many tenants on one Apache: two name-based virtual hosts, each with its
own database (its own DBDriver/DBDParams, user and schema) and its own
mod_hello settings. What a hosting provider relies on, kept true here:

- isolation: the same username holds each tenant's own date, in its own
  database, and neither tenant reads the other's;
- per-vhost directives: HelloMaxBodySize of one tenant does not apply to
  the other;
- one tenant's database down: that tenant answers 503 with Retry-After and
  its health fails, the other keeps answering 200 and stays healthy; once the
  database is back the tenant recovers without a restart;
- a graceful restart keeps both tenants serving their own data.

The read cache's part (two tenants' entries for one username never meet) is
tests/integration/test_cache.py::test_two_databases_never_share_entries.
"""
import datetime

import hellotest as ht

A, B = "tenant-a.example", "tenant-b.example"


def tenants(make_httpd, db, other_db):
    """One Apache, two tenants: A on db (HelloMaxBodySize 64), B on other_db
    (the default 4096). Health under each vhost's own name."""
    server = make_httpd(start=False, db=None, locations={})
    for name, database, extra in ((A, db, "HelloMaxBodySize 64"), (B, other_db, "")):
        server.extra += (f"\n<VirtualHost *:{server.port}>\n ServerName {name}\n"
                         f" DBDriver mysql\n DBDParams \"{database.dbd_params()}\"\n"
                         f" DBDMin 0\n DBDKeep 2\n DBDMax 10\n"
                         f" <Location /hello>\n  SetHandler hello\n  {extra}\n </Location>\n"
                         f" <Location /hello-health>\n  SetHandler hello-health\n </Location>\n"
                         f"</VirtualHost>\n")
    server.start()
    return server


def message(user, dob):
    return ht.expected_message(user, datetime.date.fromisoformat(dob), ht.utc_today())


def test_tenants_are_isolated_and_keep_their_own_directives(make_httpd, db, own_db, names):
    server = tenants(make_httpd, db, own_db)
    c = server.client()
    user, only_a = names.new(), names.new()
    dates = {A: "1961-01-02", B: "1992-03-04"}
    for host, dob in dates.items():
        assert c.put_date(f"/hello/{user}", dob, headers={"Host": host}).status == 204
    assert c.put_date(f"/hello/{only_a}", "1970-05-06", headers={"Host": A}).status == 204
    for host, dob in dates.items():
        r = c.get(f"/hello/{user}", headers={"Host": host})
        assert (r.status, r.message) == (200, message(user, dob)), (host, r)
    assert c.get(f"/hello/{only_a}", headers={"Host": B}, check=False).status == 404
    assert db.date_of_birth(user) == "1961-01-02"
    assert own_db.date_of_birth(user) == "1992-03-04"
    assert own_db.date_of_birth(only_a) is None

    # 100 bytes: over A's HelloMaxBodySize 64, well under B's default.
    body = '{"dateOfBirth":"1999-12-31"' + " " * 72 + "}"
    assert len(body) == 100
    r = c.request("PUT", f"/hello/{user}", body=body, headers={"Host": A}, check=False)
    assert r.status == 413, r
    r = c.request("PUT", f"/hello/{user}", body=body, headers={"Host": B})
    assert r.status == 204, r
    assert db.date_of_birth(user) == "1961-01-02"
    assert own_db.date_of_birth(user) == "1999-12-31"


def test_one_tenant_down_leaves_the_other_serving(make_httpd, db, own_db, names):
    server = tenants(make_httpd, db, own_db)
    c = server.client()
    user = names.new()
    for host in (A, B):
        assert c.put_date(f"/hello/{user}", "1980-08-08", headers={"Host": host}).status == 204
        assert c.get("/hello-health", headers={"Host": host}, check=False).status == 200
    own_db.stop()
    try:
        for _ in range(3):
            r = c.get(f"/hello/{user}", headers={"Host": B}, check=False)
            assert r.status == 503 and r.header("Retry-After"), r
            r = c.put_date(f"/hello/{user}", "1981-09-09", headers={"Host": B}, check=False)
            assert r.status == 503 and r.header("Retry-After"), r
            assert c.get("/hello-health", headers={"Host": B}, check=False).status == 503
            r = c.get(f"/hello/{user}", headers={"Host": A})
            assert (r.status, r.message) == (200, message(user, "1980-08-08"))
            assert c.put_date(f"/hello/{user}", "1982-10-10", headers={"Host": A}).status == 204
            assert c.put_date(f"/hello/{user}", "1980-08-08", headers={"Host": A}).status == 204
            assert c.get("/hello-health", headers={"Host": A}, check=False).status == 200
    finally:
        own_db.start()
    ht.wait_until(lambda: c.get("/hello-health", headers={"Host": B}, check=False).status == 200,
                  30, interval=0.5, what="tenant B's recovery")
    r = c.get(f"/hello/{user}", headers={"Host": B})
    assert (r.status, r.message) == (200, message(user, "1980-08-08"))
    assert c.put_date(f"/hello/{user}", "1983-11-11", headers={"Host": B}).status == 204
    assert own_db.date_of_birth(user) == "1983-11-11"
    assert db.date_of_birth(user) == "1980-08-08"


def test_a_graceful_restart_keeps_both_tenants(make_httpd, db, own_db, names):
    server = tenants(make_httpd, db, own_db)
    c = server.client()
    user = names.new()
    dates = {A: "1955-02-03", B: "1966-04-05"}
    for host, dob in dates.items():
        assert c.put_date(f"/hello/{user}", dob, headers={"Host": host}).status == 204
    server.restart("graceful")
    for host, dob in dates.items():
        r = c.get(f"/hello/{user}", headers={"Host": host})
        assert (r.status, r.message) == (200, message(user, dob)), host
        assert c.get("/hello-health", headers={"Host": host}, check=False).status == 200
    assert c.put_date(f"/hello/{user}", "1977-06-07", headers={"Host": B}).status == 204
    assert c.get(f"/hello/{user}", headers={"Host": A}).message == message(user, "1955-02-03")


# ---- scripts/tenant ------------------------------------------------------------

AUTHZ_HOST = f"LoadModule authz_host_module {ht.MODULES_DIR}/mod_authz_host.so"


def tenant(db, *args, check=True):
    import subprocess
    proc = subprocess.run(
        [str(ht.REPO / "scripts" / "tenant"), *args, "--", "--no-defaults",
         "--protocol=socket", f"--socket={db.dir / 'mysqld.sock'}", "-uroot"],
        capture_output=True, text=True, timeout=120)
    if check:
        assert proc.returncode == 0, f"scripts/tenant {' '.join(args)}:\n{proc.stdout}{proc.stderr}"
    return proc


def test_the_tenant_script_makes_a_tenant_that_serves(make_httpd, tmp_path, own_db, names):
    """scripts/tenant add: database, user and snippet; the snippet, included
    in an Apache, serves PUT and GET from the tenant's own database with the
    user's own rights; run again it keeps the password; remove takes the user
    and the snippet away and keeps the data."""
    import os
    import re
    import stat
    out = tmp_path / "sites"
    out.mkdir()
    server = make_httpd(start=False, db=own_db)
    args = ["add", "acme_1", "acme.example", "--out", str(out), "--port", str(server.port),
            "--db-port", str(own_db.port)]
    first = tenant(own_db, *args)
    snippet = out / "hello-acme_1.conf"
    assert stat.S_IMODE(os.stat(snippet).st_mode) == 0o600
    password = re.search(r" pass=([0-9a-f]{32}) ", snippet.read_text()).group(1)
    assert password not in first.stdout + first.stderr
    grants = own_db.sql("SHOW GRANTS FOR 'hello_acme_1'@'127.0.0.1'")
    assert any("GRANT SELECT, INSERT, UPDATE ON `hello_acme_1`.`hello_users`" in g[0]
               for g in grants), grants
    assert not any("DELETE" in g[0] or "ALL PRIVILEGES" in g[0] for g in grants), grants

    again = tenant(own_db, *args)   # idempotent: the same password, nothing broken
    assert password in snippet.read_text() and password not in again.stdout + again.stderr

    server.extra += f"{AUTHZ_HOST}\nInclude {snippet}\n"
    server.start()
    c = server.client()
    user = names.new()
    host = {"Host": "acme.example"}
    assert c.put_date(f"/hello/{user}", "1984-04-04", headers=host).status == 204
    r = c.get(f"/hello/{user}", headers=host)
    assert r.status == 200 and r.message == ht.expected_message(
        user, datetime.date(1984, 4, 4), ht.utc_today())
    assert c.get("/hello-health", headers=host, check=False).status == 200
    rows = own_db.sql(f"SELECT DATE_FORMAT(date_of_birth, '%Y-%m-%d') FROM hello_users "
                      f"WHERE username = '{user}'", database="hello_acme_1")
    assert rows == [["1984-04-04"]]
    assert own_db.date_of_birth(user) is None   # not in the other database
    server.stop()

    gone = tenant(own_db, "remove", "acme_1", "--out", str(out))
    assert "kept" in gone.stdout and not snippet.exists()
    assert own_db.sql("SELECT COUNT(*) FROM mysql.user WHERE user = 'hello_acme_1'") == [["0"]]
    assert own_db.sql("SELECT COUNT(*) FROM hello_users", database="hello_acme_1") == [["1"]]
    tenant(own_db, "remove", "acme_1", "--out", str(out), "--drop-database")
    assert own_db.sql("SHOW DATABASES LIKE 'hello_acme_1'") == []


def test_the_tenant_script_refuses_unsafe_names(tmp_path, db):
    for bad in ("Acme", "1acme", "acme-x", "a" * 33, "acme;drop", "x' OR '1"):
        proc = tenant(db, "add", bad, "acme.example", "--out", str(tmp_path), check=False)
        assert proc.returncode != 0 and "not a safe tenant name" in proc.stderr, (bad, proc.stderr)
    proc = tenant(db, "add", "acme", "bad host!", "--out", str(tmp_path), check=False)
    assert proc.returncode != 0 and "not a host name" in proc.stderr
    assert list(tmp_path.iterdir()) == []
    assert db.sql("SHOW DATABASES LIKE 'hello\\_%'") == []
