"""Database failures (503, Retry-After, the cause in the error log, recovery
without restarting httpd) and persistence across httpd restarts."""
import re
import time
from datetime import date

import pytest

import hellotest as ht


def wait_for_status(client, path, status, timeout=10):
    deadline = time.monotonic() + timeout
    while True:
        r = client.get(path)
        if r.status == status or time.monotonic() > deadline:
            return r
        time.sleep(0.2)


def assert_503(r, retry_after):
    assert r.status == 503, r
    assert r.header("Retry-After") == str(retry_after), r
    assert r.error == ht.R_UNAVAILABLE


def test_database_down_then_back(own_db, make_httpd, names):
    server = make_httpd(db=own_db, locations={"/hello": "", "/later": "HelloRetryAfter 7"})
    client = server.client()
    user = names.new()
    assert client.put_date(f"/hello/{user}", "1991-01-01").status == 204
    assert client.get(f"/hello/{user}").status == 200
    assert client.get(f"/later/{user}").status == 200

    own_db.stop()
    assert not own_db.running()

    # GET, HEAD and PUT of a valid body: 503 with Retry-After (default 5).
    assert_503(client.get(f"/hello/{user}"), 5)
    h = client.head(f"/hello/{user}")
    assert h.status == 503 and h.header("Retry-After") == "5" and h.body == b""
    assert_503(client.put_date(f"/hello/{user}", "1992-02-02"), 5)
    # An unknown user is 503 too (step 7 before step 8).
    assert_503(client.get(f"/hello/{names.new()}"), 5)
    # The location with HelloRetryAfter 7.
    assert_503(client.get(f"/later/{user}"), 7)
    assert_503(client.put_date(f"/later/{user}", "1992-02-02"), 7)

    # Checks before the database still decide (steps 1 to 6).
    r = client.put(f"/hello/{user}", b'{"dateOfBirth":"2001-02-29"}')
    assert r.status == 400 and r.error == ht.R_BAD_DATE
    r = client.put(f"/hello/{user}", b"[]")
    assert r.status == 400 and r.error == ht.R_NOT_OBJECT
    r = client.put(f"/hello/{user}", b"{}", content_type="text/plain")
    assert r.status == 415
    r = client.put(f"/hello/{user}", b" " * 5000)
    assert r.status == 413
    r = client.get("/hello/bad1")
    assert r.status == 400 and r.error == ht.R_USERNAME
    r = client.request("DELETE", f"/hello/{user}")
    assert r.status == 405
    r = client.get("/hello/a/b")
    assert r.status == 404

    # The cause is in the error log, in a line from mod_hello.
    log = server.error_log_text()
    lines = [line for line in log.splitlines()
             if "mod_hello" in line and f"/hello/{user} answered 503" in line]
    assert lines, log[-3000:]
    for line in lines:
        cause = line.split("answered 503:", 1)[1].strip()
        assert cause and cause != ht.R_UNAVAILABLE, line
    assert re.search(r"\[hello:(error|crit|alert|emerg)\]", log), log[-3000:]
    # ... after mod_dbd's own line about the connection failure.
    assert re.search(r"\[dbd:error\].*connect", log, re.I), log[-3000:]
    # The access log carries the reason of the 503s.
    lines_503 = [line for line in server.access_log_lines() if '" 503 ' in line]
    assert lines_503 and all(ht.R_UNAVAILABLE in line for line in lines_503), lines_503

    # The database comes back on the same port: requests succeed again
    # without restarting httpd.
    own_db.start()
    r = wait_for_status(client, f"/hello/{user}", 200, timeout=10)
    assert r.status == 200, r
    assert r.message == ht.expected_message(user, date(1991, 1, 1), ht.utc_today())
    assert client.put_date(f"/hello/{user}", "1993-03-03").status == 204
    assert own_db.date_of_birth(user) == "1993-03-03"
    assert wait_for_status(client, f"/later/{user}", 200).status == 200


def test_query_failure_is_503(own_db, make_httpd, names):
    """A query that fails (here: the application user lost its privileges)
    is a 503 with the cause in the error log, and no 500."""
    server = make_httpd(db=own_db)
    client = server.client()
    user = names.new()
    assert client.put_date(f"/hello/{user}", "1991-01-01").status == 204

    own_db.sql("REVOKE SELECT, INSERT, UPDATE ON hello_users FROM 'hello'@'127.0.0.1'; "
               "REVOKE SELECT, INSERT, UPDATE ON hello_users FROM 'hello'@'localhost'; "
               "FLUSH PRIVILEGES")
    assert_503(client.get(f"/hello/{user}"), 5)
    assert_503(client.put_date(f"/hello/{user}", "1992-02-02"), 5)
    assert own_db.date_of_birth(user) == "1991-01-01"
    log = server.error_log_text()
    assert re.search(rf"mod_hello: GET /hello/{user} answered 503: \S", log), log[-3000:]

    own_db.sql("GRANT SELECT, INSERT, UPDATE ON hello_users TO 'hello'@'127.0.0.1'; "
               "GRANT SELECT, INSERT, UPDATE ON hello_users TO 'hello'@'localhost'; "
               "FLUSH PRIVILEGES")
    assert wait_for_status(client, f"/hello/{user}", 200).status == 200
    assert client.put_date(f"/hello/{user}", "1992-02-02").status == 204
    assert own_db.date_of_birth(user) == "1992-02-02"


def test_database_never_reachable_is_503(make_httpd, names):
    """httpd starts with the database unreachable (DBDMin 0) and answers 503."""
    server = make_httpd(dbd_params=f"host=127.0.0.1 port={ht.free_port()} user=hello "
                                   "pass=x dbname=hello reconnect=0 group=mod_hello")
    client = server.client()
    assert_503(client.get(f"/hello/{names.new()}"), 5)
    assert_503(client.put_date(f"/hello/{names.new()}", "1990-01-01"), 5)


def test_data_survives_an_httpd_restart(db, make_httpd, names):
    server = make_httpd(db=db)
    client = server.client()
    user = names.new()
    assert client.put_date(f"/hello/{user}", "1984-04-04").status == 204
    old_pid = server.pid
    server.restart()
    assert server.pid != old_pid
    r = client.get(f"/hello/{user}")
    assert r.status == 200
    assert r.message == ht.expected_message(user, date(1984, 4, 4), ht.utc_today())
    assert db.date_of_birth(user) == "1984-04-04"


@pytest.mark.parametrize("mode", ["restart", "graceful"])
def test_reload_keeps_serving(db, make_httpd, names, mode):
    """After `apache2 -k restart` or `-k graceful` (post_config runs again, the
    statements are prepared again) GET and PUT still work."""
    server = make_httpd(db=db, locations={"/hello": "",
                                          "/custom": 'HelloGetQuery "SELECT date_of_birth '
                                                     'FROM hello_users WHERE username = %s"'})
    client = server.client()
    user = names.new()
    assert client.put_date(f"/hello/{user}", "1984-04-04").status == 204
    for _ in range(2):
        server.restart(mode)
        r = client.get(f"/hello/{user}")
        assert r.status == 200, r
        r = client.get(f"/custom/{user}")
        assert r.status == 200, r
        assert client.put_date(f"/hello/{user}", "1985-05-05").status == 204
        assert db.date_of_birth(user) == "1985-05-05"
