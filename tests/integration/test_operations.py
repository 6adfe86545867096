"""Operations (issue "Operations"): the health and metrics handlers,
mod_status lines, the error note and the error log, GDPR erasure, and
backups taken while the API is written to.

Every server here loads a private copy of build/mod_hello.so (opstest's
pinned_module), so that a rebuild during the run cannot crash it."""
import gzip
import json
import re
import subprocess
import time
from datetime import date, timedelta

import pytest

import hellotest as ht
import opstest as ops


@pytest.fixture(scope="module")
def ops_db(tmp_path_factory):
    """A MariaDB of this file's own, with the DELETE grant of
    sql/grants-delete.sql loaded (as root, through the sandbox)."""
    server = ops.PrivateTmpMariaDB(tmp_path_factory.mktemp("ops-mariadb"))
    try:
        server.create()
        ops.load_sql_file(server, ops.GRANTS_DELETE)
        yield server
    finally:
        server.stop()


# ---- the access log ---------------------------------------------------------------------

ACCESS_RE = re.compile(r'"(?P<method>\S+) (?P<path>\S+) HTTP/1\.1" (?P<status>\d{3}) \S+ \d+us '
                       r'"(?P<note>(?:[^"\\]|\\.)*)"$')


def access_entry(server, method, path):
    """The access-log entry of the last `method path` request (httpd writes
    it just after the answer: wait for it)."""
    def find():
        for line in reversed(server.access_log_lines()):
            m = ACCESS_RE.search(line)
            if m and m.group("method") == method and m.group("path") == path:
                return m
        return None
    return ht.wait_until(find, 5, what=f"the access-log line of {method} {path}")


def note(m):
    return m.group("note").replace('\\"', '"').replace("\\\\", "\\")


# ---- health --------------------------------------------------------------------------------

def test_health_answers_ok_and_only_to_get(db, make_ops_httpd):
    server = make_ops_httpd(db=db)
    latencies = []
    for _ in range(20):
        r = ops.plain(server, "GET", ops.HEALTH)
        assert r.status == 200, r
        assert json.loads(r.body) == {"status": "ok"}
        assert r.header("Content-Type") == "application/json"
        assert r.header("Cache-Control") == "no-store"
        assert r.header("Retry-After") is None
        latencies.append(r.elapsed)
    h = ops.plain(server, "HEAD", ops.HEALTH)
    assert h.status == 200 and h.body == b"", h
    for method in ("POST", "PUT", "DELETE", "PATCH", "OPTIONS"):
        r = ops.plain(server, method, ops.HEALTH, body=b"{}" if method != "OPTIONS" else None)
        assert r.status == 405, (method, r)
        assert r.header("Allow") == "GET, HEAD", (method, r)
        assert r.header("Content-Type") == "application/json"
        assert json.loads(r.body)["error"], r
    m = ops.scrape(server)
    # Each GET and the HEAD ran a check; the 405s did not.
    assert m.get("hello_health_checks_total", result="ok") == 21
    assert m.get("hello_health_checks_total", result="failed") == 0
    # Health checks are not API requests.
    assert m.requests_sum() == 0
    latencies.sort()
    ops.report("health check latency p50/max (s)",
               f"{latencies[len(latencies) // 2]:.4f}/{latencies[-1]:.4f}")
    assert latencies[-1] < 2, latencies


def test_health_runs_the_modules_select(private_db, make_ops_httpd, names):
    """The check runs the module's SELECT, not a mere ping: with the SELECT
    grant revoked the database is up, yet health says 503 with the driver's
    message, and says ok again once the grant is back. The 503s of the API
    carry the driver's message in the error log and the reason in the access
    log; `LogLevel hello:debug` traces the request and the store call."""
    server = make_ops_httpd(db=private_db)
    client = server.client()
    user = names.new()
    assert client.put_date(f"/hello/{user}", "1990-05-05").status == 204
    r = client.get(f"/hello/{user}")
    assert r.status == 200
    unknown = names.new()
    assert client.get(f"/hello/{unknown}").status == 404

    log = server.error_log_text()
    assert f"mod_hello: GET /hello/{user} (location /hello)" in log, log[-3000:]
    assert re.search(rf"mod_hello: store get {user}: ok \(\d+ us, 1 connection\)", log), log[-3000:]
    assert re.search(rf"mod_hello: store put {user}: ok \(\d+ us, 1 connection\)", log), log[-3000:]
    assert re.search(rf"mod_hello: store get {unknown}: not found \(\d+ us, 1 connection\)", log), log[-3000:]

    revoke = ("REVOKE SELECT ON hello_users FROM 'hello'@'127.0.0.1'; "
              "REVOKE SELECT ON hello_users FROM 'hello'@'localhost'")
    grant = ("GRANT SELECT ON hello_users TO 'hello'@'127.0.0.1'; "
             "GRANT SELECT ON hello_users TO 'hello'@'localhost'")
    private_db.sql(revoke)
    try:
        h = ops.plain(server, "GET", ops.HEALTH)
        assert h.status == 503, h
        assert h.header("Retry-After") == "5"
        assert h.header("Content-Type") == "application/json"
        body = json.loads(h.body)
        assert body["status"] == "unavailable", body
        assert "SELECT command denied" in body["reason"], body

        r = client.get(f"/hello/{user}")
        assert r.status == 503 and r.error == ht.R_UNAVAILABLE
        assert r.header("Retry-After") == "5"
    finally:
        private_db.sql(grant)

    # The error log: one line from mod_hello with the request, the 503 and
    # the MySQL error text.
    lines = [line for line in server.error_log_text().splitlines()
             if "mod_hello:" in line and f"GET /hello/{user} answered 503:" in line]
    assert len(lines) == 1, server.error_log_text()[-3000:]
    assert "[hello:error]" in lines[0]
    assert "mysql driver" in lines[0] and "SELECT command denied to user 'hello'" in lines[0], \
        lines[0]
    assert "health check failed" in server.error_log_text()
    # The access log: the reason sent, for the API and for the health check.
    assert note(access_entry(server, "GET", f"/hello/{user}")) == ht.R_UNAVAILABLE
    assert "SELECT command denied" in note(access_entry(server, "GET", ops.HEALTH))

    m = ops.scrape(server)
    assert m.get("hello_health_checks_total", result="failed") == 1
    assert m.get("hello_unavailable_total") == 1
    assert m.get("hello_db_errors_total") == 2  # the health check's and the GET's

    h = ops.plain(server, "GET", ops.HEALTH)
    assert h.status == 200 and json.loads(h.body) == {"status": "ok"}, h
    assert client.get(f"/hello/{user}").status == 200


def test_health_and_metrics_errors_set_the_error_note(db, make_ops_httpd):
    """Every 4xx/5xx the module answers sets the note `hello-error`
    (README, docs/operations.md), the 405s of the health and metrics
    handlers included."""
    server = make_ops_httpd(db=db)
    missing = []
    for path in (ops.HEALTH, ops.METRICS):
        r = ops.plain(server, "POST", path, body=b"{}")
        assert r.status == 405, r
        reason = json.loads(r.body)["error"]
        m = access_entry(server, "POST", path)
        if note(m) != reason:
            missing.append(f"POST {path} -> 405 {reason!r}: access log note {m.group('note')!r}")
    assert not missing, "\n".join(missing)


# ---- GDPR erasure ----------------------------------------------------------------------------

def test_erasure(ops_db, make_ops_httpd, names):
    server = make_ops_httpd(db=ops_db, locations={"/hello": "", "/off": "HelloAllowDelete Off",
                                                  "/erase": "HelloAllowDelete On"})
    client = server.client()
    # docs/openapi.yaml documents DELETE's 204, 400 and 404 (since 2b4f567):
    # the harness's checker stays strict for these requests.
    user, other = names.new(), names.new()
    assert client.put_date(f"/erase/{user}", "1970-07-07").status == 204
    assert client.put_date(f"/erase/{other}", "1971-01-01").status == 204

    r = client.request("DELETE", f"/erase/{user}")
    assert r.status == 204 and r.body == b"", r
    assert ops_db.date_of_birth(user) is None
    assert ops_db.date_of_birth(other) == "1971-01-01"   # only that row
    r = client.get(f"/erase/{user}")
    assert r.status == 404 and r.error == ht.R_UNKNOWN
    r = client.request("DELETE", f"/erase/{user}")
    assert r.status == 404 and r.error == ht.R_UNKNOWN, r
    r = client.request("DELETE", f"/erase/{names.new()}")
    assert r.status == 404 and r.error == ht.R_UNKNOWN, r
    r = client.request("DELETE", "/erase/bad1")
    assert r.status == 400 and r.error == ht.R_USERNAME, r
    r = client.request("DELETE", f"/erase/{other}/x")
    assert r.status == 404 and r.error == "not found: use /erase/<username>", r
    # With erasure on, every 405 names DELETE.
    for method in ("POST", "PATCH", "OPTIONS", "FOO"):
        r = client.request(method, f"/erase/{other}")
        assert r.status == 405, r
        assert r.header("Allow") == "GET, HEAD, PUT, DELETE", r
        assert r.error == "method not allowed: use GET, HEAD, PUT or DELETE", r
    # The other methods still work under /erase.
    assert client.put_date(f"/erase/{user}", "1972-02-02").status == 204
    assert client.head(f"/erase/{user}").status == 200
    assert ops_db.date_of_birth(user) == "1972-02-02"

    # Without the directive, or Off: 405 and the row stays.
    for base in ("/hello", "/off"):
        r = client.request("DELETE", f"{base}/{other}")
        assert r.status == 405, r
        assert r.header("Allow") == "GET, HEAD, PUT", r
        assert r.error == ht.R_METHOD
        r = client.request("POST", f"{base}/{other}")
        assert r.status == 405 and r.header("Allow") == "GET, HEAD, PUT", r
    assert ops_db.date_of_birth(other) == "1971-01-01"

    # The access log carries the reasons; DELETE is counted as DELETE.
    assert note(access_entry(server, "DELETE", "/erase/bad1")) == ht.R_USERNAME
    assert note(access_entry(server, "DELETE", f"/off/{other}")) == ht.R_METHOD
    m = ops.scrape(server)
    assert m.get("hello_requests_total", method="DELETE", code="2xx") == 1
    assert m.get("hello_requests_total", method="DELETE", code="4xx") == 6


def test_erasure_without_the_grant(db, make_ops_httpd, names):
    """HelloAllowDelete On against a user without the DELETE grant: DELETE is
    a 503 with the driver's message in the error log; GET and PUT on the same
    server, on the same pooled connections, keep working."""
    server = make_ops_httpd(db=db, locations={"/hello": "", "/erase": "HelloAllowDelete On"})
    client = server.client()
    user = names.new()
    assert client.put_date(f"/erase/{user}", "1980-08-08").status == 204
    r = client.request("DELETE", f"/erase/{user}")
    assert r.status == 503 and r.error == ht.R_UNAVAILABLE, r
    assert db.date_of_birth(user) == "1980-08-08"
    lines = [line for line in server.error_log_text().splitlines()
             if f"DELETE /erase/{user} answered 503:" in line]
    assert lines and "DELETE command denied" in lines[0], server.error_log_text()[-3000:]
    for _ in range(3):
        assert client.get(f"/erase/{user}").status == 200
        assert client.put_date(f"/hello/{user}", "1980-08-09").status == 204
    assert ops.plain(server, "GET", ops.HEALTH).status == 200


# ---- metrics ---------------------------------------------------------------------------------

def api_plan(unknown):
    """A fixed mix of API requests per worker: (request, expected status)."""
    def kinds(u):
        body, ct = ops.json_put("1988-03-0%d" % (1 + len(u) % 9))
        return [
            (("PUT", f"/hello/{u}", body, ct), 204),
            (("GET", f"/hello/{u}", None, None), 200),
            (("HEAD", f"/hello/{u}", None, None), 200),
            (("GET", f"/hello/{unknown}", None, None), 404),
            (("GET", "/hello/bad1", None, None), 400),
            (("PUT", f"/hello/{u}", body, {"Content-Type": "text/plain"}), 415),
            (("PUT", f"/hello/{u}", b"[1]", {"Content-Type": "application/json"}), 400),
            (("DELETE", f"/hello/{u}", None, None), 405),
            (("POST", f"/hello/{u}", b"{}", {"Content-Type": "application/json"}), 405),
            (("GET", f"/hello/{u}/x", None, None), 404),
            (("GET", f"/hello/{u}%zz", None, None), 400),    # answered by Apache itself
        ]
    return kinds


def test_metrics_under_load_survive_graceful_and_reset_on_restart(ops_db, make_ops_httpd,
                                                                   names):
    server = make_ops_httpd(db=ops_db, status=True)
    started = time.time()
    m0 = ops.scrape(server)
    assert all(v == 0 for v in m0.counters().values()), m0.text
    assert abs(m0.get("hello_metrics_created_seconds") - started) < 120
    for name, kind in (("hello_requests_total", "counter"), ("hello_db_errors_total", "counter"),
                       ("hello_unavailable_total", "counter"),
                       ("hello_health_checks_total", "counter"),
                       ("hello_request_duration_seconds", "histogram"),
                       ("hello_metrics_created_seconds", "gauge")):
        assert m0.types.get(name) == kind, (name, m0.types)

    per_worker = 44
    workers = 4
    users = ops.bulk_names(names, workers, per_worker)
    unknown = names.new()
    kinds = api_plan(unknown)
    expected = {}

    def plan(w, seq):
        if seq >= per_worker:
            return None
        ks = kinds(users[w][seq // 11 * 11])
        request, status = ks[seq % len(ks)]
        expected[(w, seq)] = status
        return request

    load_started = time.monotonic()
    with ops.Load(server, plan, threads=workers, duration=30) as load:
        load.wait()
    wall = time.monotonic() - load_started
    assert not load.errors(), load.errors()[:5]
    assert not load.contract_errors, load.contract_errors[:5]
    wrong = [(r, expected[(r.worker, r.seq)]) for r in load.results
             if r.status != expected[(r.worker, r.seq)]]
    assert not wrong, wrong[:10]
    sent = len(load.results)
    assert sent == per_worker * workers

    for _ in range(3):
        assert ops.plain(server, "GET", ops.HEALTH).status == 200

    m1 = ops.scrape(server)
    counted = {k: v for k, v in m1.requests().items() if v}
    assert counted == load.by_method_class(), (counted, load.by_method_class())
    assert m1.requests_sum() == sent
    assert m1.get("hello_request_duration_seconds_count") == sent
    buckets = m1.buckets()
    assert len(buckets) == 13 and buckets[-1][0] == "+Inf", buckets
    values = [v for _, v in buckets]
    assert values == sorted(values), buckets            # cumulative
    bounds = [float(le) for le, _ in buckets[:-1]]
    assert bounds == sorted(bounds) and len(set(bounds)) == len(bounds), buckets
    assert values[-1] == sent, buckets                  # +Inf == _count
    total_seconds = m1.get("hello_request_duration_seconds_sum")
    assert 0 < total_seconds <= wall * workers, (total_seconds, wall)
    assert m1.get("hello_db_errors_total") == 0
    assert m1.get("hello_unavailable_total") == 0
    assert m1.get("hello_health_checks_total", result="ok") == 3
    assert m1.get("hello_health_checks_total", result="failed") == 0
    created = m1.get("hello_metrics_created_seconds")
    assert created == m0.get("hello_metrics_created_seconds")

    # mod_status shows the same numbers.
    st = ops.status_auto(server)
    assert int(st["HelloRequests"]) == sent, st
    for method in ops.METHODS:
        for cls in ops.CLASSES:
            key = f"HelloRequests{method}{cls}"
            assert int(st[key]) == m1.get("hello_requests_total", method=method, code=cls), key
    assert int(st["HelloRequestsGET2xx"]) > 0
    assert int(st["HelloDbErrors"]) == 0 and int(st["HelloUnavailable"]) == 0
    assert int(st["HelloHealthOk"]) == 3 and int(st["HelloHealthFailed"]) == 0
    assert int(st["HelloLatencyCount"]) == sent
    assert int(st["HelloMetricsCreated"]) == created

    # apache2 -k graceful: the same segment, nothing lost.
    old_pid = server.pid
    server.restart("graceful")
    assert server.pid == old_pid
    m2 = ops.scrape(server)
    lower = {k: (v, m2.counters().get(k)) for k, v in m1.counters().items()
             if not m2.counters().get(k, -1) >= v}
    assert not lower, lower
    assert m2.get("hello_metrics_created_seconds") == created
    assert m2.requests_sum() == sent
    # ... and the new generation adds to it.
    assert server.client().get(f"/hello/{users[0][0]}").status == 200
    m3 = ops.scrape(server)
    assert m3.requests_sum() == sent + 1
    assert m3.get("hello_requests_total", method="GET", code="2xx") == \
        m2.get("hello_requests_total", method="GET", code="2xx") + 1
    assert int(ops.status_auto(server)["HelloRequests"]) == sent + 1

    # A full stop and start: new counters.
    server.restart()
    assert server.pid != old_pid
    m4 = ops.scrape(server)
    assert all(v == 0 for v in m4.counters().values()), m4.text
    assert m4.get("hello_metrics_created_seconds") >= created
    assert int(ops.status_auto(server)["HelloRequests"]) == 0


LAYOUT_NOTICE = ("mod_hello: this build counts with another metrics layout; "
                 "starting new counters")


class Build:
    """`apxs -c` of the current sources with -DHELLO_METRICS_LAYOUT=99, in
    the background (started when the module's first test starts)."""

    def __init__(self, directory):
        self.dir = directory
        glue = sorted(ht.REPO.glob("mod_hello*.[ch]"))   # mod_hello.c, its config, mod_hello.h
        sources = [p.name for p in glue if p.suffix == ".c"] + sorted(
            f"src/{p.name}" for p in (ht.REPO / "src").glob("*.c"))
        subprocess.run(["cp", "-r", *map(str, glue), str(ht.REPO / "src"),
                        str(ht.REPO / "include"), str(directory)], check=True)
        self.log = open(directory / "build.log", "wb")
        self.proc = subprocess.Popen(
            ["apxs", "-c", "-I", "include", "-DHELLO_METRICS_LAYOUT=99", "-o", "mod_hello.la",
             *sources, "-ljansson"], cwd=directory, stdout=self.log, stderr=subprocess.STDOUT)

    def result(self, timeout=120):
        rc = self.proc.wait(timeout)
        self.log.close()
        so = self.dir / ".libs" / "mod_hello.so"
        assert rc == 0 and so.exists(), (self.dir / "build.log").read_text()[-3000:]
        return so

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


@pytest.fixture(scope="module", autouse=True)
def layout99(tmp_path_factory):
    build = Build(tmp_path_factory.mktemp("layout99"))
    try:
        yield build
    finally:
        build.close()


def test_metrics_layout_change_starts_new_counters(db, make_ops_httpd, layout99, names,
                                                   tmp_path):
    server = make_ops_httpd(db=db)
    client = server.client()
    original = server.module
    for _ in range(3):
        assert client.get(f"/hello/{names.new()}").status == 404
    m = ops.scrape(server)
    assert m.requests_sum() == 3
    created = m.get("hello_metrics_created_seconds")

    # Graceful restart into a build with another layout.
    server.module = ops.pin_module(tmp_path / "layout99", layout99.result())
    server.restart("graceful")
    assert server.error_log_text().count(LAYOUT_NOTICE) == 1, server.error_log_text()[-3000:]
    m = ops.scrape(server)
    assert all(v == 0 for v in m.counters().values()), m.text
    assert m.get("hello_metrics_created_seconds") >= created
    for _ in range(2):
        assert client.get(f"/hello/{names.new()}").status == 404
    assert ops.scrape(server).requests_sum() == 2

    # The same build again: the segment is kept.
    server.restart("graceful")
    assert server.error_log_text().count(LAYOUT_NOTICE) == 1
    assert ops.scrape(server).requests_sum() == 2

    # Back to the first build: another layout again, new counters again.
    server.module = original
    server.restart("graceful")
    assert server.error_log_text().count(LAYOUT_NOTICE) == 2
    m = ops.scrape(server)
    assert all(v == 0 for v in m.counters().values()), m.text
    assert client.get(f"/hello/{names.new()}").status == 404
    assert ops.scrape(server).requests_sum() == 1


# ---- backups ---------------------------------------------------------------------------------

def test_backup_while_writing_restores_every_acknowledged_row(ops_db, make_ops_httpd, names,
                                                              tmp_path):
    server = make_ops_httpd(db=ops_db)
    workers = 4
    users = ops.bulk_names(names, workers, 3000)
    dates = {}
    for w in range(workers):
        for i, u in enumerate(users[w]):
            dates[u] = (date(1940, 1, 1) + timedelta(days=(w * 7919 + i * 37) % 25000)).isoformat()

    def plan(w, seq):
        if seq >= len(users[w]):
            return None
        u = users[w][seq]
        body, ct = ops.json_put(dates[u])
        return "PUT", f"/hello/{u}", body, ct

    def acked(load, before=None, after=None):
        return {r.path.rsplit("/", 1)[1] for r in list(load.results)
                if r.status == 204 and (before is None or r.done < before)
                and (after is None or r.done > after)}

    out = tmp_path / "backups"
    with ops.Load(server, plan, threads=workers, duration=30) as load:
        ht.wait_until(lambda: len(acked(load)) >= 200, 20, what="200 acknowledged PUTs")
        backup_started = time.monotonic()
        proc = subprocess.run([str(ops.BACKUP), "-d", "hello", "-o", str(out), "--",
                               *ops.root_client_options(ops_db)],
                              capture_output=True, text=True, timeout=120)
        backup_done = time.monotonic()
        # Writes went on during and after the backup.
        ht.wait_until(lambda: len(acked(load, after=backup_done)) >= 50, 20,
                      what="PUTs acknowledged after the backup")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not load.errors() and not load.contract_errors, (load.errors()[:3],
                                                            load.contract_errors[:3])
    assert set(load.statuses()) == {204}, load.statuses()
    ops.report("backup duration (s)", f"{backup_done - backup_started:.3f}")
    ops.report("PUTs acknowledged during the backup",
               len(acked(load, before=backup_done, after=backup_started)))

    path = proc.stdout.strip()
    assert re.fullmatch(re.escape(str(out)) + r"/hello-\d{8}T\d{6}Z\.sql\.gz", path), proc.stdout
    assert [p.name for p in out.iterdir()] == [path.rsplit("/", 1)[1]]   # no partial file left
    with gzip.open(path, "rt") as f:
        dump = f.read()
    assert "-- Dump completed" in dump.splitlines()[-1]

    before = acked(load, before=backup_started)
    assert len(before) >= 200

    restored = ops.PrivateTmpMariaDB(tmp_path / "restored")
    try:
        restored.init()
        restored.start()
        proc = subprocess.run([str(ops.RESTORE), path, "--", *ops.root_client_options(restored)],
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        rows = ops.table_rows(restored)
        missing = sorted(u for u in before if u not in rows)
        assert not missing, f"{len(missing)} acknowledged rows are not in the backup: " \
                            f"{missing[:10]}"
        wrong = {u: (rows[u], dates[u]) for u in before if rows[u] != dates[u]}
        assert not wrong, wrong
        # Nothing in it that was never written, or written otherwise.
        ours = {u: d for u, d in rows.items() if u in dates}
        assert all(dates[u] == d for u, d in ours.items())
        ops.report("rows in the backup / acknowledged before it started",
                   f"{len(ours)}/{len(before)}")

        # The restored database serves the API once the grants are loaded.
        restored.setup()
        other = make_ops_httpd(db=restored)
        u = sorted(before)[0]
        r = other.client().get(f"/hello/{u}")
        assert r.status == 200, r
        assert r.message == ht.expected_message(u, date.fromisoformat(dates[u]), ht.utc_today())
    finally:
        restored.stop()
