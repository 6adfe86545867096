"""One database round trip per request, read off MariaDB's own counters,
and what replaces the check that mod_dbd made before every loan: a parked
connection that died (killed by the server, or the server restarted) is
replaced without an error answer."""
import threading
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


def test_one_statement_and_no_ping_per_request(own_db, make_httpd, names):
    server = make_httpd(db=own_db)
    client = server.client()
    users = [names.new() for _ in range(20)]
    for u in users:
        assert client.put_date(f"/hello/{u}", "1980-05-17").status == 204

    before = counters(own_db)
    gets = puts = 0
    for i in range(300):
        u = users[i % len(users)]
        if i % 4 == 3:
            assert client.put_date(f"/hello/{u}", f"19{50 + i % 40}-0{1 + i % 9}-1{i % 10}").status == 204
            puts += 1
        else:
            assert client.get(f"/hello/{u}").status == 200
            gets += 1
        if i % 50 == 0:
            assert client.get(f"/hello/{names.new()}").status == 404
            gets += 1
    after = counters(own_db)
    delta = {k: after[k] - before[k] for k in COUNTERS}
    print(f"[round-trips] {gets} GET + {puts} PUT: {delta}")

    # Exactly one statement per request...
    assert delta["Com_stmt_execute"] == gets + puts, delta
    # ...and no COM_PING on a connection that had served a request already:
    # mod_dbd checks only a connection it opens or that comes back to it.
    # Before the park every request sent one (Com_admin_commands = requests).
    assert delta["Com_admin_commands"] <= delta["Connections"], delta
    assert delta["Com_admin_commands"] <= 4, delta
    # Statements are prepared once per connection, not per request.
    assert delta["Com_stmt_prepare"] <= 2 * delta["Connections"], delta


def test_killed_connections_replaced_without_error(own_db, make_httpd, names):
    server = make_httpd(db=own_db)
    client = server.client()
    users = [names.new() for _ in range(8)]
    for u in users:
        assert client.put_date(f"/hello/{u}", "1975-03-03").status == 204

    # Park several connections: concurrent requests each hold one.
    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda u: server.client().get(f"/hello/{u}").status, users * 5))
    assert set(statuses) == {200}, statuses
    ids = hello_connection_ids(own_db)
    assert ids, "no connection of user hello"
    for cid in ids:
        own_db.sql(f"KILL CONNECTION {cid}")
    ht.wait_until(lambda: not set(hello_connection_ids(own_db)) & set(ids), 10,
                  what="the killed connections to go")

    # Every parked connection is dead now; none of this may answer 503.
    r = client.get(f"/hello/{users[0]}")
    assert r.status == 200, r
    assert client.put_date(f"/hello/{users[1]}", "1999-12-31").status == 204
    assert own_db.date_of_birth(users[1]) == "1999-12-31"
    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda u: server.client().get(f"/hello/{u}").status, users * 5))
    assert set(statuses) == {200}, statuses
    assert not server.status_500_lines()

    # The debug trace names what happened.
    log = server.error_log_text()
    assert "after replacing a dead parked one" in log, log[-3000:]


def test_mariadb_restart_costs_no_error(own_db, make_httpd, names):
    """A clean restart of MariaDB while httpd idles: the first requests
    after it find their parked connections dead and must still succeed."""
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


def test_concurrent_load_with_fewer_connections_than_threads(own_db, make_httpd, names):
    """The harness's DBDMax (10) is below ThreadsPerChild (25): threads wait
    in mod_dbd for a connection while others are parked. Nothing may hang
    and nothing may fail."""
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


def test_park_knows_dbdmax_when_loaded_after_mod_dbd(db, make_httpd, names):
    """mod_hello reads DBDMax on its way to mod_dbd (the harness sets 10), so
    the park never lets a thread wait inside mod_dbd."""
    server = make_httpd(db=db)
    client = server.client()
    user = names.new()
    assert client.put_date(f"/hello/{user}", "1988-08-08").status == 204
    log = server.error_log_text()
    assert "connection park for 127.0.0.1:0: DBDMax 10" in log, log[-3000:]
    assert "cannot read DBDMax" not in log


def test_park_without_dbdmax_when_loaded_before_mod_dbd(db, make_httpd, names):
    """Loaded before mod_dbd, mod_hello never sees DBDMax: it says so once at
    startup, and still serves (the park then guesses, see src/park.c)."""
    server = make_httpd(db=db, dbd_after_hello=True)
    client = server.client()
    user = names.new()
    assert client.put_date(f"/hello/{user}", "1977-07-17").status == 204
    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda _: server.client().get(f"/hello/{user}").status,
                                 range(200)))
    assert set(statuses) == {200}, statuses
    log = server.error_log_text()
    assert "mod_hello: cannot read DBDMax (load mod_hello after mod_dbd" in log, log[-3000:]
    assert "DBDMax not known" in log, log[-3000:]
