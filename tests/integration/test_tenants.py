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
- a graceful restart keeps both tenants serving their own data;
- metrics per tenant: every hello_* sample carries vhost="<ServerName>",
  each tenant's counters count its own requests only, mod_status has a line
  per vhost, and the counters survive a graceful restart, also one that
  adds more vhosts than the shared segment has room for.

The read cache's part (two tenants' entries for one username never meet) is
tests/integration/test_cache.py::test_two_databases_never_share_entries.
"""
import datetime

import hellotest as ht
import opstest as ops

A, B = "tenant-a.example", "tenant-b.example"


def tenants(make_httpd, db, other_db, extra=""):
    """One Apache, two tenants: A on db (HelloMaxBodySize 64), B on other_db
    (the default 4096). Health under each vhost's own name."""
    server = make_httpd(start=False, db=None, locations={})
    server.extra += extra
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


def vhost_block(name, port):
    return f"\n<VirtualHost *:{port}>\n ServerName {name}\n</VirtualHost>\n"


def test_metrics_are_per_tenant_and_survive_graceful(make_httpd, db, own_db, names):
    metrics_conf = ("<Location /hello-metrics>\n SetHandler hello-metrics\n</Location>\n"
                    + ops.STATUS_CONF)
    server = tenants(make_httpd, db, own_db, extra=metrics_conf)
    c = server.client()
    user = names.new()
    plan = {A: (2, 3, 1), B: (1, 1, 0)}   # PUTs, GETs that find the user, GETs of nobody
    for host, (puts, gets, unknown) in plan.items():
        for _ in range(puts):
            assert c.put_date(f"/hello/{user}", "1970-01-01", headers={"Host": host}).status == 204
        for _ in range(gets):
            assert c.get(f"/hello/{user}", headers={"Host": host}).status == 200
        for _ in range(unknown):
            assert c.get(f"/hello/{names.new()}", headers={"Host": host},
                         check=False).status == 404
    assert c.get("/hello-health", headers={"Host": B}, check=False).status == 200

    def scrape(host):
        r = c.get("/hello-metrics", headers={"Host": host}, check=False)
        assert r.status == 200, r
        return ops.Metrics(r.body.decode())

    def check(m):
        assert {A, B} <= set(m.vhosts()), m.vhosts()
        unlabelled = [k for k in m.samples if "vhost" not in dict(k[1])]
        assert not unlabelled, unlabelled[:3]
        for host, (puts, gets, unknown) in plan.items():
            assert m.get("hello_requests_total", vhost=host, method="PUT", code="2xx") == puts
            assert m.get("hello_requests_total", vhost=host, method="GET", code="2xx") == gets
            assert m.get("hello_requests_total", vhost=host, method="GET", code="4xx") == unknown
            assert m.get("hello_request_duration_seconds_count", vhost=host) == \
                puts + gets + unknown
        assert m.get("hello_health_checks_total", vhost=B, result="ok") == 1
        assert m.get("hello_health_checks_total", vhost=A, result="ok") == 0

    first = scrape(A)
    check(first)
    assert scrape(B).samples == first.samples     # one page for the server, on any vhost
    created = first.get("hello_metrics_created_seconds", vhost=A)

    r = ops.plain(server, "GET", ops.STATUS + "?auto", headers={"Host": A})
    assert r.status == 200, r
    lines = [line.partition(": ")[2] for line in r.body.decode().splitlines()
             if line.startswith("HelloVhost")]
    assert f"vhost={A} requests=6 5xx=0 unavailable=0 db_errors=0 cache_hit_ratio=0" in lines
    assert f"vhost={B} requests=2 5xx=0 unavailable=0 db_errors=0 cache_hit_ratio=0" in lines

    server.restart("graceful")
    check(scrape(A))
    assert scrape(A).get("hello_metrics_created_seconds", vhost=A) == created

    # Twelve more vhosts: more than the segment holds, so a new one is made
    # and the tenants' counters move into it.
    more = [f"extra{i}.example" for i in range(12)]
    server.extra += "".join(vhost_block(name, server.port) for name in more)
    server.restart("graceful")
    grown = scrape(A)
    check(grown)
    assert grown.get("hello_metrics_created_seconds", vhost=A) == created
    assert set(more) <= set(grown.vhosts())
    assert grown.get("hello_requests_total", vhost=more[0]) == 0
    assert c.get(f"/hello/{user}", headers={"Host": A}).status == 200
    assert scrape(A).get("hello_requests_total", vhost=A, method="GET", code="2xx") == 4


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
    for opt, bad, says in (("--client-host", "x' OR '1", "not a host pattern"),
                           ("--client-host", "a b", "not a host pattern"),
                           ("--db-host", "db;rm", "not a host"),
                           ("--db-port", "99x", "not a port"),
                           ("--port", "-1", "not a port")):
        proc = tenant(db, "add", "acme", "acme.example", "--out", str(tmp_path), opt, bad,
                      check=False)
        assert proc.returncode != 0 and says in proc.stderr, (opt, bad, proc.stderr)
    assert list(tmp_path.iterdir()) == []
    assert db.sql("SHOW DATABASES LIKE 'hello\\_%'") == []


def test_the_tenant_script_removes_every_account_of_the_tenant(tmp_path, own_db):
    """A tenant added for two client hosts (two Apache machines): remove
    without --client-host drops both accounts, with it only that one."""
    for host in ("127.0.0.1", "10.0.0.%"):
        tenant(own_db, "add", "twohost", "two.example", "--out", str(tmp_path),
               "--db-port", str(own_db.port), "--client-host", host)

    def hosts():
        return sorted(r[0] for r in own_db.sql(
            "SELECT host FROM mysql.user WHERE user = 'hello_twohost'"))
    assert hosts() == ["10.0.0.%", "127.0.0.1"]
    tenant(own_db, "remove", "twohost", "--out", str(tmp_path), "--client-host", "10.0.0.%")
    assert hosts() == ["127.0.0.1"]
    tenant(own_db, "add", "twohost", "two.example", "--out", str(tmp_path),
           "--db-port", str(own_db.port), "--client-host", "10.0.0.%")
    gone = tenant(own_db, "remove", "twohost", "--out", str(tmp_path), "--drop-database")
    assert hosts() == [], gone.stdout
    assert "'hello_twohost'@'10.0.0.%'" in gone.stdout and "'hello_twohost'@'127.0.0.1'" in gone.stdout
    again = tenant(own_db, "remove", "twohost", "--out", str(tmp_path))
    assert "(no account)" in again.stdout
    # A query that fails (here: the wrong port) stops the script before it
    # removes anything, instead of reporting "(no account)".
    tenant(own_db, "add", "twohost", "two.example", "--out", str(tmp_path),
           "--db-port", str(own_db.port))
    import subprocess
    proc = subprocess.run(
        [str(ht.REPO / "scripts" / "tenant"), "remove", "twohost", "--out", str(tmp_path), "--",
         "--no-defaults", "--protocol=tcp", "--host=127.0.0.1", f"--port={ht.free_port()}",
         "-uroot"], capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0, proc.stdout
    assert (tmp_path / "hello-twohost.conf").exists()
    assert hosts() == ["127.0.0.1"]
