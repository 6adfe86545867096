"""mod_dbd is the only pool: what a request costs the database (one
statement, and mod_dbd's check of each connection it lends), what happens
to connections that die in the pool, and the watchdog's bounds, all read
off MariaDB's own counters and the error log of a real httpd."""
import socket
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import hellotest as ht

COUNTERS = ("Com_admin_commands", "Com_stmt_execute", "Com_stmt_prepare", "Connections")


def counters(db):
    names = ", ".join(f"'{c}'" for c in COUNTERS)
    rows = db.sql(f"SHOW GLOBAL STATUS WHERE Variable_name IN ({names})")
    return {name: int(value) for name, value in rows}


def hello_connection_ids(db):
    return [int(row[0]) for row in
            db.sql("SELECT id FROM information_schema.processlist WHERE user = 'hello'")]


def test_one_statement_and_one_check_per_request(own_db, make_httpd, names):
    server = make_httpd(db=own_db)
    client = server.client()
    users = [names.new() for _ in range(20)]
    for u in users:
        assert client.put_date(f"/hello/{u}", "1980-05-17").status == 204

    before = counters(own_db)
    requests = 0
    for i in range(300):
        u = users[i % len(users)]
        if i % 4 == 3:
            assert client.put_date(f"/hello/{u}", f"19{50 + i % 40}-0{1 + i % 9}-1{i % 10}").status == 204
        else:
            assert client.get(f"/hello/{u}").status == 200
        requests += 1
        if i % 50 == 0:
            assert client.get(f"/hello/{names.new()}").status == 404
            requests += 1
    after = counters(own_db)
    delta = {k: after[k] - before[k] for k in COUNTERS}
    print(f"[round-trips] {requests} requests: {delta}")

    # Exactly one statement per request...
    assert delta["Com_stmt_execute"] == requests, delta
    # ...after mod_dbd's check of the connection it lends (COM_PING counts
    # as an admin command): one per loan, never more.
    assert requests <= delta["Com_admin_commands"] <= requests + delta["Connections"], delta
    # Statements are prepared once per connection, not per request.
    assert delta["Com_stmt_prepare"] <= 2 * delta["Connections"], delta


def test_killed_connections_are_dropped_by_mod_dbd(own_db, make_httpd, names):
    """Connections killed while idle in mod_dbd's pool fail its check when
    next lent, and it drops them. Each dead one costs at most one 503 (with
    Retry-After); then every request succeeds again."""
    server = make_httpd(db=own_db)
    users = [names.new() for _ in range(8)]
    seed = server.client()
    for u in users:
        assert seed.put_date(f"/hello/{u}", "1975-03-03").status == 204
    # Several pooled connections: concurrent requests each hold one.
    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda u: server.client().get(f"/hello/{u}").status, users * 5))
    assert set(statuses) == {200}, statuses
    ids = hello_connection_ids(own_db)
    assert ids, "no connection of user hello"
    for cid in ids:
        own_db.sql(f"KILL CONNECTION {cid}")
    ht.wait_until(lambda: not set(hello_connection_ids(own_db)) & set(ids), 10,
                  what="the killed connections to go")

    answers = [server.client().get(f"/hello/{users[i % 8]}") for i in range(len(ids) + 4)]
    failed = [r for r in answers if r.status != 200]
    assert all(r.status == 503 and r.header("Retry-After") == "5" for r in failed), failed
    assert len(failed) <= len(ids), (len(failed), len(ids))
    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda u: server.client().get(f"/hello/{u}").status, users * 5))
    assert set(statuses) == {200}, statuses
    assert server.client().put_date(f"/hello/{users[1]}", "1999-12-31").status == 204
    assert own_db.date_of_birth(users[1]) == "1999-12-31"
    assert not server.status_500_lines()
    print(f"[connections] {len(ids)} killed, {len(failed)} answered 503")


def test_mariadb_restart_costs_no_error(own_db, make_httpd, names):
    """A clean restart of MariaDB while httpd idles: the first request after
    it finds its pooled connection dead (mod_dbd's check drops it) and
    succeeds on the second loan."""
    server = make_httpd(db=own_db)
    client = server.client()
    user = names.new()
    assert client.put_date(f"/hello/{user}", "1966-06-06").status == 204
    for _ in range(5):
        assert client.get(f"/hello/{user}").status == 200

    own_db.stop()
    own_db.start()

    answers = [client.get(f"/hello/{user}").status for _ in range(20)]
    assert answers == [200] * 20, answers
    other = names.new()
    assert client.put_date(f"/hello/{other}", "1955-05-05").status == 204
    assert own_db.date_of_birth(other) == "1955-05-05"
    assert "store get" in server.error_log_text() and "2 connections)" in server.error_log_text()


def test_concurrent_load_with_fewer_connections_than_threads(own_db, make_httpd, names):
    """The harness's DBDMax (10) is below ThreadsPerChild (25): threads wait
    in mod_dbd for a connection. Nothing may hang and nothing may fail."""
    server = make_httpd(db=own_db)
    users = [names.new() for _ in range(50)]
    seed = server.client()
    for u in users:
        assert seed.put_date(f"/hello/{u}", "2001-01-01").status == 204
    failures = []
    lock = threading.Lock()

    def one(i):
        c = server.client()
        u = users[i % len(users)]
        r = c.put_date(f"/hello/{u}", "2002-02-02") if i % 5 == 0 else c.get(f"/hello/{u}")
        if r.status not in (200, 204):
            with lock:
                failures.append(r)

    with ThreadPoolExecutor(40) as pool:
        list(pool.map(one, range(2000)))
    assert not failures, failures[:5]
    # Never more connections than DBDMax per child (ServerLimit 2).
    assert len(hello_connection_ids(own_db)) <= 20


SLOW_GET = ('HelloGetQuery "SELECT CAST(date_of_birth AS CHAR) FROM hello_users '
            'WHERE username = %s AND SLEEP(0.3) = 0"')


def test_waiting_for_a_connection_is_not_a_hung_database(db, make_httpd, names):
    """DBDMax 1 and queries of 0.3 s: twelve requests at once queue for the
    one connection, the last for over three seconds, three times
    HelloDBDTimeout. The queue moves, so the watchdog must not cut it."""
    server = make_httpd(db=db, locations={"/hello": "", "/slow": SLOW_GET},
                        extra="DBDKeep 1\nDBDMax 1\nHelloDBDTimeout 1\n")
    user = names.new()
    assert server.client().put_date(f"/hello/{user}", "1984-04-04").status == 204
    started = time.monotonic()
    with ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(lambda _: server.client().get(f"/slow/{user}"), range(12)))
    took = time.monotonic() - started
    statuses = [r.status for r in answers]
    print(f"[connections] 12 queued GETs of 0.3 s on DBDMax 1: {took:.2f} s, {statuses}")
    assert statuses == [200] * 12, statuses
    assert "past HelloDBDTimeout" not in server.error_log_text()


def test_hang_on_a_fresh_connection_is_cut(own_db, make_httpd, names):
    """The first call on a connection just opened hangs (a session holds a
    write lock on the table): the watchdog knows the connection's socket
    from the loan on, so it cuts the call at HelloDBDTimeout, once."""
    server = make_httpd(db=own_db, extra="DBDMin 0\nHelloDBDTimeout 1\n")
    user = names.new()
    holder = subprocess.Popen(
        [str(ht.SANDBOX), "sql", str(own_db.dir), "hello", "-e",
         "LOCK TABLES hello_users WRITE; SELECT SLEEP(60);"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def lock_holders():
        return [row[0] for row in own_db.sql("SELECT id FROM information_schema.processlist "
                                             "WHERE info LIKE 'SELECT SLEEP(60)%'")]
    try:
        ht.wait_until(lambda: len(lock_holders()) == 1, 10, what="the lock holder")
        started = time.monotonic()
        r = server.client().get(f"/hello/{user}")
        took = time.monotonic() - started
        print(f"[connections] GET on a fresh connection behind a lock: {r.status} in {took:.2f} s")
        assert r.status == 503 and r.header("Retry-After") == "5", r
        assert took < 5, took
        time.sleep(1)   # the watchdog looks ten more times: nothing more to cut
        log = server.error_log_text()
        assert log.count("past HelloDBDTimeout") == 1, log[-3000:]
    finally:
        for cid in lock_holders():
            own_db.sql(f"KILL {cid}")
        holder.wait(timeout=10)
    ht.wait_until(lambda: server.client().get(f"/hello/{user}").status == 404, 10,
                  what="the API to answer after the lock went")


class RefusingDatabase:
    """A TCP port that accepts connections and closes them at once, counting
    them: every connect attempt of the mysql client shows up here."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            conn.close()

    def close(self):
        self.sock.close()


def test_unreachable_database_one_connect_per_request_and_few_log_lines(make_httpd, names):
    """While the database cannot be reached, a request makes one connect
    attempt (two at most, once, for the first request that finds it gone),
    and mod_hello logs one line per ten seconds, not one per request."""
    refusing = RefusingDatabase()
    try:
        server = make_httpd(dbd_params=f"host=127.0.0.1 port={refusing.port} user=hello "
                                       "pass=x dbname=hello reconnect=0")
        client = server.client()
        n = 20
        answers = [client.get(f"/hello/{names.new()}") for _ in range(n)]
        assert all(r.status == 503 and r.header("Retry-After") == "5" for r in answers), answers
        print(f"[connections] {n} requests against a refusing database: "
              f"{refusing.accepted} connect attempts")
        assert n <= refusing.accepted <= n + 2, refusing.accepted
        lines = [line for line in server.error_log_text().splitlines()
                 if "mod_hello:" in line and "answered 503:" in line]
        assert 1 <= len(lines) <= 2, lines   # one per child (ServerLimit 2)
        assert "no database connection could be taken from mod_dbd" in lines[0], lines
    finally:
        refusing.close()
