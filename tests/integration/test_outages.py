"""Database outages under a real httpd: MariaDB down when httpd starts,
killed (SIGKILL) under a GET/PUT load, hung (SIGSTOP), and killed in the
middle of a PUT load (nothing acknowledged may be lost).

Each test has its own MariaDB (opstest's private_db) and its own httpd on
a private copy of the module, with the DBDParams the README recommends
(reconnect=0 and the driver's timeouts, here 2 s). Connections are mod_dbd's
alone: the idle ones that die with MariaDB stay in its pool until its check
of each before a loan drops it (DBDKeep and DBDExptime decide how many stay
idle, and how long), so the first requests after a restart may answer 503,
one per dead connection at most. Measured numbers are printed as
`[ops-measure] ...` lines (pytest -s)."""
import json
import threading
import time
from datetime import date, timedelta

import hellotest as ht
import opstest as ops

RECOVERY_BOUND = 5.0    # seconds from "MariaDB answers again" to "the API answers"
HANG_BOUND = 20.0       # seconds a request may take against a hung MariaDB


def unavailable(r, retry_after="5"):
    assert r.status == 503, r
    assert r.header("Retry-After") == retry_after, r
    assert r.error == ht.R_UNAVAILABLE, r


def assert_no_crash(server):
    crashes = server.crash_lines()
    assert not crashes, "a child crashed:\n" + "\n".join(crashes)
    bad = server.status_500_lines()
    assert not bad, "5xx other than 503:\n" + "\n".join(bad)


def test_httpd_started_while_database_down(private_db, make_ops_httpd, names):
    """(a) httpd starts while MariaDB is down and answers 503 with
    Retry-After and the JSON error; once MariaDB is up again requests
    succeed within RECOVERY_BOUND seconds, with no httpd restart."""
    private_db.stop()
    assert not private_db.running()
    server = make_ops_httpd(db=private_db, dbd_params=ops.fast_dbd_params(private_db),
                            locations={"/hello": "", "/later": "HelloRetryAfter 9"})
    pid = server.pid
    client = server.client()
    user = names.new()

    answered_503 = 0
    started = time.monotonic()
    unavailable(client.get(f"/hello/{user}"))
    unavailable(client.put_date(f"/hello/{user}", "1999-09-09"))
    unavailable(client.get(f"/later/{user}"), "9")
    h = client.head(f"/hello/{user}")
    assert h.status == 503 and h.header("Retry-After") == "5" and h.body == b"", h
    answered_503 += 4
    ops.report("503 latency with MariaDB down (s)", f"{(time.monotonic() - started) / 4:.4f}")
    # Checks before the database still decide.
    assert client.put_date(f"/hello/{user}", "2001-02-29").status == 400

    hc = ops.plain(server, "GET", ops.HEALTH)
    assert hc.status == 503, hc
    assert hc.header("Retry-After") == "5"
    body = json.loads(hc.body)
    assert body["status"] == "unavailable" and body["reason"], body
    ops.report("health with MariaDB down: latency (s), reason",
               f"{hc.elapsed:.4f}, {body['reason']!r}")

    # The cause is in the error log: mod_dbd's line with the driver's
    # message, then mod_hello's line for the request.
    log = server.error_log_text()
    assert "Can't connect to" in log, log[-3000:]
    assert f"mod_hello: GET /hello/{user} answered 503:" in log, log[-3000:]

    private_db.start()
    up = time.monotonic()
    polled = []

    def answers():
        polled.append(client.get(f"/hello/{user}").status)
        return polled[-1] != 503

    took = ops.wait_for(answers, RECOVERY_BOUND, what="the API to answer after MariaDB started")
    answered_503 += polled.count(503)
    ops.report("recovery after MariaDB started (s)", f"{took:.3f}")
    r = client.get(f"/hello/{user}")
    assert r.status == 404 and r.error == ht.R_UNKNOWN, r
    assert client.put_date(f"/hello/{user}", "1999-09-09").status == 204
    assert client.get(f"/hello/{user}").status == 200
    assert client.get(f"/later/{user}").status == 200
    assert private_db.date_of_birth(user) == "1999-09-09"
    assert ops.plain(server, "GET", ops.HEALTH).status == 200
    assert time.monotonic() - up < RECOVERY_BOUND + 5

    # Same parent, same generation: no restart happened.
    assert server.pid == pid
    assert server.error_log_text().count("resuming normal operations") == 1
    m = ops.scrape(server)
    assert m.get("hello_unavailable_total") == answered_503
    assert m.get("hello_db_errors_total") >= answered_503 + 1   # + the health check
    assert m.get("hello_health_checks_total", result="failed") == 1
    assert m.get("hello_health_checks_total", result="ok") == 1
    assert_no_crash(server)


def mixed_plan(users, dates):
    """Each worker PUTs its next user and GETs it back (round and round)."""
    def plan(w, seq):
        u = users[w][(seq // 2) % len(users[w])]
        if seq % 2 == 0:
            body, ct = ops.json_put(dates[u])
            return "PUT", f"/hello/{u}", body, ct
        return "GET", f"/hello/{u}", None, None
    return plan


def known_dates(users):
    return {u: (date(1930, 1, 1) + timedelta(days=(w * 104729 + i * 53) % 30000)).isoformat()
            for w, group in enumerate(users) for i, u in enumerate(group)}


def count(load, pred):
    return sum(1 for r in list(load.results) if pred(r))


def test_kill9_under_load(private_db, make_ops_httpd, names):
    """(b) SIGKILL to MariaDB during a concurrent keep-alive GET/PUT load:
    only 2xx, 4xx and 503 answers, no 500, no dropped connection, no
    crashed child; after MariaDB restarts the load succeeds again."""
    server = make_ops_httpd(db=private_db, dbd_params=ops.fast_dbd_params(private_db))
    workers = 6
    users = ops.bulk_names(names, workers, 2000)
    dates = known_dates(users)
    with ops.Load(server, mixed_plan(users, dates), threads=workers, duration=25) as load:
        ht.wait_until(lambda: count(load, lambda r: r.status in (200, 204)) >= 300, 15,
                      what="300 successful answers")
        ops.kill9(private_db)
        killed = time.monotonic()
        ht.wait_until(lambda: count(load, lambda r: r.status == 503 and r.sent > killed) >= 20,
                      10, what="503 answers after the kill")
        private_db.start()
        up = time.monotonic()
        ht.wait_until(lambda: count(load, lambda r: r.status in (200, 204) and r.sent > up)
                      >= 100, RECOVERY_BOUND + 10, what="successes after MariaDB restarted")
        first_ok = min(r.done for r in list(load.results)
                       if r.status in (200, 204) and r.sent > up)
    ops.report("kill -9 under load: answers", load.statuses())
    ops.report("kill -9 under load: first success after MariaDB answered (s)",
               f"{first_ok - up:.3f}")
    ops.report("kill -9 under load: restart of MariaDB (crash recovery) took (s)",
               f"{up - killed:.3f}")

    assert not load.errors(), load.errors()[:5]
    assert not load.contract_errors, load.contract_errors[:5]
    statuses = load.statuses()
    assert set(statuses) <= {200, 204, 404, 503}, statuses
    assert first_ok - up < RECOVERY_BOUND
    # A GET that follows its own acknowledged PUT finds the date written.
    by_seq = {(r.worker, r.seq): r for r in load.results}
    today = ht.utc_today()
    for r in load.results:
        put = by_seq.get((r.worker, r.seq - 1))
        if r.method != "GET" or put is None or put.status != 204:
            continue
        assert r.status in (200, 503), (put, r)
        if r.status == 200:
            u = r.path.rsplit("/", 1)[1]
            assert json.loads(r.answer)["message"] == ht.expected_message(
                u, date.fromisoformat(dates[u]), today), (r, r.answer)
    assert_no_crash(server)

    m = ops.scrape(server)
    answered = len(load.results)
    assert m.requests_sum() == answered
    assert m.get("hello_unavailable_total") == statuses.get(503, 0)
    assert sum(v for (_, cls), v in m.requests().items() if cls == "5xx") == statuses.get(503, 0)
    assert m.get("hello_db_errors_total") >= statuses.get(503, 0)
    assert m.get("hello_request_duration_seconds_count") == answered

    # The MySQL error text of the failed calls is in the error log.
    log = server.error_log_text()
    assert "answered 503:" in log
    assert any(s in log for s in ("Lost connection", "gone away", "Can't connect")), log[-3000:]


def test_hung_database(private_db, make_ops_httpd, names, request):
    """(c) MariaDB frozen (SIGSTOP): requests that need it must come back
    (503) within HANG_BOUND seconds, requests that do not need it are
    answered meanwhile, and after SIGCONT the API works again.

    As docs/operations.md says: HelloDBDTimeout (the watchdog, on
    mod_watchdog) bounds a call on a lent connection and mod_dbd's ping of
    a pooled one, and an option-file group gives new connections
    the client's connect-timeout (apr-util 1.6's mysql driver has no timeout
    parameter of its own)."""
    optfile = ops.ClientOptionFile(connect_timeout=2)
    request.addfinalizer(lambda: optfile.__exit__(None, None, None))
    server = make_ops_httpd(db=private_db,
                            dbd_params=ops.fast_dbd_params(private_db, group=optfile.group),
                            extra="HelloDBDTimeout 2\n",
                            env={"MYSQL_HOME": optfile.dir})
    client = server.client()
    user = names.new()
    assert client.put_date(f"/hello/{user}", "1977-07-07").status == 204
    assert client.get(f"/hello/{user}").status == 200   # a connection is pooled

    results = {}

    def one(i):
        started = time.monotonic()
        try:
            r = ht.Client(server.port, server.contract, timeout=HANG_BOUND).get(f"/hello/{user}")
            results[i] = (r.status, r.header("Retry-After"), time.monotonic() - started)
        except OSError as e:
            results[i] = (repr(e), None, time.monotonic() - started)

    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(4)]
    with ops.Frozen(private_db) as frozen:
        for t in threads:
            t.start()
        time.sleep(0.2)   # let them reach the database (nothing to poll for)
        # Workers that do not need the database still answer.
        r = client.get("/hello/bad1")
        assert r.status == 400 and r.elapsed < 2, r
        metrics_answer = ops.plain(server, "GET", ops.METRICS, timeout=5)
        assert metrics_answer.status == 200
        for t in threads:
            t.join(HANG_BOUND + 5)
        frozen.thaw()
        thawed = time.monotonic()
    assert not any(t.is_alive() for t in threads)
    ops.report("requests against a SIGSTOPped MariaDB (status, Retry-After, seconds)",
               sorted(results.values(), key=lambda x: x[2]))

    # After SIGCONT the API recovers without a restart, from the first
    # request on: the connections the watchdog shut down are replaced, not
    # answered 503.
    first = client.get(f"/hello/{user}")
    assert first.status == 200, first
    took = ops.wait_for(lambda: client.get(f"/hello/{user}").status == 200, RECOVERY_BOUND,
                        what="the API to answer after SIGCONT")
    ops.report("recovery after SIGCONT (s)", f"{took:.3f}")
    assert time.monotonic() - thawed < RECOVERY_BOUND + 2
    assert_no_crash(server)

    slow = {i: v for i, v in results.items()
            if v[0] != 503 or v[1] != "5" or v[2] >= HANG_BOUND}
    assert not slow, (
        f"GET /hello/{user} against a SIGSTOPped MariaDB must answer 503 with Retry-After "
        f"within {HANG_BOUND:.0f} s (DBDParams: {ops.fast_dbd_params(private_db)}); got "
        f"{sorted(slow.values(), key=lambda x: x[2])}")


def test_kill9_during_put_load_loses_nothing_acknowledged(private_db, make_ops_httpd, names):
    """(d) Threads PUT unique users with known dates and record every 204;
    MariaDB is killed (SIGKILL) in the middle. After it restarts, every
    acknowledged user is in the table with its exact date."""
    server = make_ops_httpd(db=private_db, dbd_params=ops.fast_dbd_params(private_db))
    workers = 8
    users = ops.bulk_names(names, workers, 2000)
    dates = known_dates(users)

    def plan(w, seq):
        if seq >= len(users[w]):
            return None
        u = users[w][seq]
        body, ct = ops.json_put(dates[u])
        return "PUT", f"/hello/{u}", body, ct

    with ops.Load(server, plan, threads=workers, duration=25) as load:
        ht.wait_until(lambda: count(load, lambda r: r.status == 204) >= 300, 15,
                      what="300 acknowledged PUTs")
        ops.kill9(private_db)
        killed = time.monotonic()
        ht.wait_until(lambda: count(load, lambda r: r.status == 503 and r.sent > killed) >= 20,
                      10, what="503 answers after the kill")
    assert not load.errors(), load.errors()[:5]
    assert not load.contract_errors, load.contract_errors[:5]
    statuses = load.statuses()
    assert set(statuses) <= {204, 503}, statuses
    assert_no_crash(server)

    private_db.start()
    rows = ops.table_rows(private_db)
    acked = {r.path.rsplit("/", 1)[1] for r in load.results if r.status == 204}
    refused = {r.path.rsplit("/", 1)[1] for r in load.results if r.status == 503}
    lost = sorted(u for u in acked if u not in rows)
    assert not lost, f"{len(lost)} of {len(acked)} acknowledged PUTs are lost: {lost[:10]}"
    wrong = {u: (rows[u], dates[u]) for u in acked if rows[u] != dates[u]}
    assert not wrong, wrong
    # Whatever else is there was sent by this test, with its own date.
    ours = {u: d for u, d in rows.items() if u in dates}
    assert all(dates[u] == d for u, d in ours.items())
    assert set(ours) <= acked | refused
    ops.report("kill -9 during PUTs: acknowledged / refused (503) / refused but committed",
               f"{len(acked)} / {len(refused)} / {len(set(ours) & refused)}")

    # And the API serves them.
    client = server.client()
    ops.wait_for(lambda: client.get(f"/hello/{sorted(acked)[0]}").status == 200, RECOVERY_BOUND,
                 what="the API after MariaDB restarted")
