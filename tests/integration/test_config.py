"""Configuration: `apache2 -t` on good and bad directives, mod_dbd missing,
HelloGetQuery/HelloPutQuery, and the access log's %{hello-error}n note."""
import re
import time
from datetime import date

import pytest

import hellotest as ht


def check(make_httpd, **kwargs):
    server = make_httpd(start=False, **kwargs)
    return server.check_config()


# ---- apache2 -t ---------------------------------------------------------------------

def test_good_config_passes(make_httpd):
    rc, out = check(make_httpd, locations={
        "/hello": "",
        "/a": "HelloMaxBodySize 16\nHelloRetryAfter 1",
        "/b": "HelloMaxBodySize 1048576\nHelloRetryAfter 86400",
        "/c": 'HelloGetQuery "SELECT date_of_birth FROM hello_users WHERE username = %s"\n'
              'HelloPutQuery "INSERT INTO hello_users (username, date_of_birth) VALUES (%s, %s) '
              'ON DUPLICATE KEY UPDATE date_of_birth = VALUES(date_of_birth)"',
    }, extra="HelloMaxBodySize 2048\nHelloRetryAfter 30")
    assert rc == 0, out
    assert "Syntax OK" in out


BAD = [
    ("HelloMaxBodySize", "abc", "16", "1048576"),
    ("HelloMaxBodySize", "0", "16", "1048576"),
    ("HelloMaxBodySize", "-5", "16", "1048576"),
    ("HelloMaxBodySize", "99999999999", "16", "1048576"),
    ("HelloMaxBodySize", "99999999999999999999999", "16", "1048576"),
    ("HelloMaxBodySize", "15", "16", "1048576"),
    ("HelloMaxBodySize", "1048577", "16", "1048576"),
    ("HelloMaxBodySize", "4k", "16", "1048576"),
    ("HelloMaxBodySize", "4096.0", "16", "1048576"),
    ("HelloRetryAfter", "0", "1", "86400"),
    ("HelloRetryAfter", "x", "1", "86400"),
    ("HelloRetryAfter", "-1", "1", "86400"),
    ("HelloRetryAfter", "86401", "1", "86400"),
    ("HelloRetryAfter", "5s", "1", "86400"),
]


@pytest.mark.parametrize("where", ["location", "server"])
@pytest.mark.parametrize("directive,value,low,high", BAD,
                         ids=[f"{d}-{v}" for d, v, _, _ in BAD])
def test_bad_number_is_refused(make_httpd, where, directive, value, low, high):
    line = f"{directive} {value}"
    if where == "location":
        rc, out = check(make_httpd, locations={"/hello": line})
    else:
        rc, out = check(make_httpd, extra=line)
    assert rc != 0, out
    assert "Syntax OK" not in out
    assert re.search(r"Syntax error on line \d+ of .*httpd\.conf", out), out
    # The message names the directive, the value, and what is allowed.
    assert directive in out and f"'{value}'" in out, out
    assert low in out and high in out, out


@pytest.mark.parametrize("directive", ["HelloGetQuery", "HelloPutQuery"])
def test_empty_query_is_refused(make_httpd, directive):
    rc, out = check(make_httpd, locations={"/hello": f'{directive} ""'})
    assert rc != 0, out
    assert re.search(r"Syntax error on line \d+", out), out
    assert directive in out and "empty" in out, out


@pytest.mark.parametrize("directive", ["HelloMaxBodySize", "HelloRetryAfter",
                                       "HelloGetQuery", "HelloPutQuery"])
def test_missing_argument_is_refused(make_httpd, directive):
    rc, out = check(make_httpd, locations={"/hello": directive})
    assert rc != 0, out
    assert directive in out, out


def test_without_mod_dbd_fails_and_names_mod_dbd(make_httpd):
    rc, out = check(make_httpd, load_dbd=False)
    assert rc != 0, out
    assert "Syntax OK" not in out
    assert "mod_dbd" in out, out


def test_query_without_mod_dbd_fails_and_names_mod_dbd(make_httpd):
    rc, out = check(make_httpd, load_dbd=False, locations={
        "/hello": 'HelloGetQuery "SELECT date_of_birth FROM hello_users WHERE username = %s"'})
    assert rc != 0, out
    assert "mod_dbd" in out, out


def test_without_mod_dbd_does_not_start(make_httpd):
    server = make_httpd(start=False, load_dbd=False)
    with pytest.raises(RuntimeError):
        server.start()
    assert "mod_dbd" in server.error_log_text() + server._apache2("-t").stderr


def test_mod_dbd_loaded_after_mod_hello(db, make_httpd, names):
    """LoadModule order does not matter: mod_dbd after mod_hello works."""
    server = make_httpd(start=False, db=db, dbd_after_hello=True, locations={
        "/hello": "",
        "/custom": 'HelloGetQuery "SELECT date_of_birth FROM hello_users WHERE username = %s"'})
    conf = server.config_text()
    assert conf.index("hello_module") < conf.index("dbd_module")
    rc, out = server.check_config()
    assert rc == 0, out
    server.start()
    client = server.client()
    user = names.new()
    assert client.put_date(f"/hello/{user}", "1990-01-01").status == 204
    assert client.get(f"/hello/{user}").status == 200
    assert client.get(f"/custom/{user}").status == 200
    # Nothing to say about the order at startup either.
    assert "[hello:notice]" not in server.error_log_text()


@pytest.mark.parametrize("location, allow, methods", [
    ("/hello", "GET, HEAD, PUT", "GET, HEAD or PUT"),
    ("/erase", "GET, HEAD, PUT, DELETE", "GET, HEAD, PUT or DELETE")])
def test_methods_refused_by_apache_name_delete_when_allowed(db, make_httpd, names, location,
                                                             allow, methods):
    """A method Apache refuses before the handler (here mod_allowmethods'
    405) carries the location's own Allow and reason: DELETE is named
    under HelloAllowDelete On."""
    server = make_httpd(db=db, locations={"/hello": "AllowMethods GET HEAD PUT",
                                          "/erase": "HelloAllowDelete On\n"
                                                    "AllowMethods GET HEAD PUT DELETE"},
                        extra=f"LoadModule allowmethods_module {ht.MODULES_DIR}/"
                              "mod_allowmethods.so\n")
    r = server.client().request("POST", f"{location}/{names.new()}", body={},
                                content_type="application/json")
    assert r.status == 405, r
    assert r.header("Allow") == allow, r
    assert r.error == f"method not allowed: use {methods}", r


# ---- HelloGetQuery / HelloPutQuery ----------------------------------------------------

PLUS_ONE_GET = ('HelloGetQuery "SELECT DATE_ADD(date_of_birth, INTERVAL 1 DAY) '
                'FROM hello_users WHERE username = %s"')
MINUS_ONE_PUT = ('HelloPutQuery "INSERT INTO hello_users (username, date_of_birth) '
                 'VALUES (%s, DATE_SUB(%s, INTERVAL 1 DAY)) '
                 'ON DUPLICATE KEY UPDATE date_of_birth = VALUES(date_of_birth)"')


@pytest.fixture(scope="module")
def custom_httpd(db, tmp_path_factory):
    server = ht.Httpd(tmp_path_factory.mktemp("httpd-custom"), db=db, locations={
        "/hello": "",
        # Observable: stores the date minus one day, reads it plus one day.
        "/custom": PLUS_ONE_GET + "\n" + MINUS_ONE_PUT,
        # Equivalent to the defaults, written differently.
        "/plain": 'HelloGetQuery "SELECT u.date_of_birth AS d FROM hello.hello_users AS u '
                  'WHERE u.username = %s LIMIT 1"\n'
                  'HelloPutQuery "INSERT INTO hello.hello_users SET username = %s, '
                  'date_of_birth = %s ON DUPLICATE KEY UPDATE date_of_birth = '
                  'VALUES(date_of_birth)"',
        # Only the GET statement replaced.
        "/getonly": PLUS_ONE_GET,
    })
    try:
        server.start()
        yield server
    finally:
        server.stop()
    server.assert_healthy()


def message_for(user, dob):
    return ht.expected_message(user, dob, ht.utc_today())


def test_custom_queries_are_used(custom_httpd, db, names):
    client = custom_httpd.client()
    user = names.new()
    r = client.put_date(f"/custom/{user}", "2000-03-10")
    assert r.status == 204, r
    assert db.date_of_birth(user) == "2000-03-09"      # HelloPutQuery ran
    r = client.get(f"/custom/{user}")
    assert r.status == 200
    assert r.message == message_for(user, date(2000, 3, 10))   # HelloGetQuery ran
    r = client.get(f"/hello/{user}")
    assert r.message == message_for(user, date(2000, 3, 9))    # the default at /hello
    r = client.get(f"/custom/{names.new()}")
    assert r.status == 404 and r.error == ht.R_UNKNOWN


def test_custom_queries_written_differently(custom_httpd, db, names):
    client = custom_httpd.client()
    user = names.new()
    assert client.put_date(f"/plain/{user}", "1999-07-07").status == 204
    assert db.date_of_birth(user) == "1999-07-07"
    assert client.put_date(f"/plain/{user}", "1999-08-08").status == 204
    assert db.date_of_birth(user) == "1999-08-08"
    r = client.get(f"/plain/{user}")
    assert r.status == 200 and r.message == message_for(user, date(1999, 8, 8))
    assert client.get(f"/hello/{user}").message == r.message
    r = client.get(f"/plain/{names.new()}")
    assert r.status == 404 and r.error == ht.R_UNKNOWN


def test_only_get_query_replaced(custom_httpd, db, names):
    client = custom_httpd.client()
    user = names.new()
    assert client.put_date(f"/getonly/{user}", "1999-07-07").status == 204
    assert db.date_of_birth(user) == "1999-07-07"       # the default HelloPutQuery
    r = client.get(f"/getonly/{user}")
    assert r.message == message_for(user, date(1999, 7, 8))


def test_server_level_query_is_inherited(db, make_httpd, names):
    server = make_httpd(db=db, extra=PLUS_ONE_GET,
                        locations={"/hello": "", "/own": 'HelloGetQuery "SELECT date_of_birth '
                                                         'FROM hello_users WHERE username = %s"'})
    client = server.client()
    user = names.new()
    assert client.put_date(f"/hello/{user}", "1999-07-07").status == 204
    assert client.get(f"/hello/{user}").message == message_for(user, date(1999, 7, 8))
    assert client.get(f"/own/{user}").message == message_for(user, date(1999, 7, 7))


def test_server_level_limits_are_inherited(db, make_httpd, names):
    server = make_httpd(db=db, extra="HelloMaxBodySize 100",
                        locations={"/hello": "", "/big": "HelloMaxBodySize 200"})
    client = server.client()
    user = names.new()
    r = client.put(f"/hello/{user}", b" " * 101)
    assert r.status == 413 and r.error == "request body too large: the limit is 100 bytes"
    r = client.put(f"/big/{user}", b" " * 101)
    assert r.status == 400 and r.error == ht.R_NOT_OBJECT
    r = client.put(f"/big/{user}", b" " * 201)
    assert r.status == 413 and r.error == "request body too large: the limit is 200 bytes"


def test_server_level_retry_after_is_inherited(make_httpd, names):
    server = make_httpd(dbd_params=f"host=127.0.0.1 port={ht.free_port()} user=hello pass=x "
                                   "dbname=hello reconnect=0 group=mod_hello",
                        extra="HelloRetryAfter 11", locations={"/hello": "",
                                                               "/own": "HelloRetryAfter 3"})
    client = server.client()
    r = client.get(f"/hello/{names.new()}")
    assert r.status == 503 and r.header("Retry-After") == "11"
    r = client.get(f"/own/{names.new()}")
    assert r.status == 503 and r.header("Retry-After") == "3"


# ---- the access log --------------------------------------------------------------------

LOG_RE = re.compile(r'"(?P<request>[^"]*)" (?P<status>\d{3}) \S+ \d+us "(?P<note>.*)"$')


def log_note(m):
    """The %{hello-error}n field, unescaped (httpd writes " as \\" and \\ as \\\\)."""
    return re.sub(r'\\(["\\])', r"\1", m.group("note"))


def log_entry(server, method, path, timeout=3):
    """The access log line of the request `method path` (paths are unique)."""
    want = f"{method} {path} HTTP/1.1"
    deadline = time.monotonic() + timeout
    while True:
        for line in server.access_log_lines():
            m = LOG_RE.search(line)
            if m and m.group("request") == want:
                return m
        if time.monotonic() > deadline:
            raise AssertionError(f"no access log line for {want}:\n" +
                                 "\n".join(server.access_log_lines()[-10:]))
        time.sleep(0.05)


def test_access_log_carries_the_reason(httpd, client, names):
    u = names.new()
    cases = [
        client.get(f"/hello/{u}x1"),                                   # 400 username
        client.get(f"/hello/{names.new()}"),                           # 404 unknown
        client.get(f"/hello/{u}/x"),                                   # 404 path
        client.request("DELETE", f"/hello/{names.new()}"),             # 405
        client.put(f"/hello/{names.new()}", b"{}", content_type="text/plain"),   # 415
        client.put(f"/hello/{names.new()}", b" " * 5000),              # 413
        client.put(f"/hello/{names.new()}", b"[1]"),                   # 400 not an object
        client.put(f"/hello/{names.new()}", b"{}"),                    # 400 no date
        client.put_date(f"/hello/{names.new()}", "2001-02-29"),        # 400 bad date
        client.put_date(f"/hello/{names.new()}", "9999-01-01"),        # 400 future
        client.get(f"/hello/{u}%zz"),                                  # 400 from the core
        client.get(f"/hello/{u}%2Fx"),                                 # 404 from the core
    ]
    for r in cases:
        assert r.status >= 400
        m = log_entry(httpd, r.method, r.path)
        assert m.group("status") == str(r.status)
        assert log_note(m) == r.error, (r, m.group(0))


def test_access_log_of_a_malformed_chunked_body_carries_the_reason_sent(httpd, client, names):
    r = client.put(f"/hello/{names.new()}", None, headers={"Transfer-Encoding": "chunked"},
                   raw_body=b"zz\r\n{}\r\n0\r\n\r\n")
    assert r.status == 400
    m = log_entry(httpd, r.method, r.path)
    assert log_note(m) == r.error, (r, m.group(0))


def test_access_log_success_has_no_reason(httpd, client, names):
    user = names.new()
    r = client.put_date(f"/hello/{user}", "1990-01-01")
    assert r.status == 204
    assert log_entry(httpd, "PUT", f"/hello/{user}").group("note") == "-"
    r = client.get(f"/hello/{user}?ok")
    assert r.status == 200
    assert log_entry(httpd, "GET", f"/hello/{user}?ok").group("note") == "-"
