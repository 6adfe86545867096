"""PUT: body rules, Content-Type, body size, unreadable and slow bodies
(docs/API.md, "PUT /hello/{username}"). A rejected PUT changes nothing."""
import socket
import time
from datetime import date, timedelta

import pytest

import hellotest as ht

KEPT = "1990-05-17"


@pytest.fixture
def user(client, names, db):
    """A user with the date KEPT saved, to show that a rejected PUT changes
    nothing."""
    name = names.new()
    r = client.put_date(f"/hello/{name}", KEPT)
    assert r.status == 204
    assert db.date_of_birth(name) == KEPT
    return name


def assert_kept(client, db, name, kept=KEPT):
    assert db.date_of_birth(name) == kept
    r = client.get(f"/hello/{name}")
    assert r.status == 200
    today = ht.utc_today()
    assert r.message in (ht.expected_message(name, date.fromisoformat(kept), today),
                         ht.expected_message(name, date.fromisoformat(kept),
                                             today - timedelta(days=1)))


def padded(size, dob="2000-01-01"):
    """A valid body of exactly size bytes: the date plus a member of spaces."""
    head = '{"dateOfBirth":"%s","pad":"' % dob
    tail = '"}'
    n = size - len(head) - len(tail)
    assert n >= 0, size
    body = (head + " " * n + tail).encode()
    assert len(body) == size
    return body


# ---- body rules ---------------------------------------------------------------------

NOT_OBJECT = [
    ("not-json", b"dateOfBirth=2000-01-01"),
    ("truncated", b'{"dateOfBirth":"2000-01-01"'),
    ("single-quotes", b"{'dateOfBirth':'2000-01-01'}"),
    ("unquoted-key", b'{dateOfBirth:"2000-01-01"}'),
    ("trailing-comma", b'{"dateOfBirth":"2000-01-01",}'),
    ("array", b'["2000-01-01"]'),
    ("array-of-object", b'[{"dateOfBirth":"2000-01-01"}]'),
    ("string", b'"2000-01-01"'),
    ("number", b"20000101"),
    ("null", b"null"),
    ("true", b"true"),
    ("two-values", b'{"dateOfBirth":"2000-01-01"} {"dateOfBirth":"2000-01-01"}'),
    ("trailing-garbage", b'{"dateOfBirth":"2000-01-01"}x'),
    ("empty", b""),
    ("whitespace-only", b"  \n "),
    ("invalid-utf8-ff", b'{"dateOfBirth":"2000-01-01","x":"\xff"}'),
    ("invalid-utf8-overlong", b'{"dateOfBirth":"2000-01-01","x":"\xc0\xaf"}'),
    ("invalid-utf8-surrogate", b'{"dateOfBirth":"2000-01-01","x":"\xed\xa0\x80"}'),
    ("invalid-utf8-truncated", b'{"dateOfBirth":"2000-01-01","x":"\xe2\x82"}'),
    ("invalid-utf8-in-key", b'{"dateOfBirth":"2000-01-01","\xfe":1}'),
    ("latin1-date", b'{"dateOfBirth":"2000-01-01\xe9"}'),
    ("utf16", '{"dateOfBirth":"2000-01-01"}'.encode("utf-16")),
    ("duplicate-dateOfBirth", b'{"dateOfBirth":"2000-01-01","dateOfBirth":"2001-01-01"}'),
    ("duplicate-same-value", b'{"dateOfBirth":"2000-01-01","dateOfBirth":"2000-01-01"}'),
    ("duplicate-other-member", b'{"a":1,"a":2,"dateOfBirth":"2000-01-01"}'),
    ("nul-byte", b'{"dateOfBirth":"2000-01-01"}\x00'),
]

NO_DATE = [
    ("empty-object", b"{}"),
    ("other-members", b'{"name":"alice","date":"2000-01-01"}'),
    ("wrong-case-key", b'{"dateofbirth":"2000-01-01"}'),
    ("key-with-space", b'{"dateOfBirth ":"2000-01-01"}'),
    ("number", b'{"dateOfBirth":20000101}'),
    ("null", b'{"dateOfBirth":null}'),
    ("true", b'{"dateOfBirth":true}'),
    ("array", b'{"dateOfBirth":["2000-01-01"]}'),
    ("object", b'{"dateOfBirth":{"year":2000,"month":1,"day":1}}'),
    ("nested-only", b'{"user":{"dateOfBirth":"2000-01-01"}}'),
]

BAD_DATE = [
    "2000-1-1", "2000/01/01", "20000-01-01", " 2000-01-01", "2000-01-01 ", "2000-01-1",
    "200-01-01", "2000-01-01T00:00:00Z", "2000-01-01Z", "01-01-2000", "2000.01.01",
    "2000-01-0a", "+2000-01-01", "-2000-01-01", "", "2000--01-01", "2000-001-01",
    "\uff12\uff10\uff10\uff10-01-01",   # fullwidth digits
    "\u0662\u0660\u0660\u0660-01-01",   # Arabic-Indic digits
    "2000\u201001\u201001",             # Unicode hyphens
    # impossible dates
    "2001-02-29", "1900-02-29", "2100-02-29", "2000-02-30", "2000-13-01", "2000-00-10",
    "2000-01-00", "2000-04-31", "2000-06-31", "2000-09-31", "2000-11-31", "2000-01-32",
    "2000-99-99",
    # before the year 1000
    "0999-12-31", "0999-01-01", "0000-01-01", "0001-01-01", "0100-02-29",
]


def put_rejected(client, db, name, body, status, reason, **kw):
    r = client.put(f"/hello/{name}", body, **kw)
    assert r.status == status, r
    assert r.error == reason, r
    assert_kept(client, db, name)
    return r


@pytest.mark.parametrize("body", [b for _, b in NOT_OBJECT], ids=[i for i, _ in NOT_OBJECT])
def test_body_not_a_json_object(client, db, user, body):
    put_rejected(client, db, user, body, 400, ht.R_NOT_OBJECT)


def test_body_absent_without_content_length(client, db, user):
    """A PUT with neither Content-Length nor a chunked body has an empty body."""
    put_rejected(client, db, user, None, 400, ht.R_NOT_OBJECT)


@pytest.mark.parametrize("body", [b for _, b in NO_DATE], ids=[i for i, _ in NO_DATE])
def test_date_of_birth_missing_or_not_a_string(client, db, user, body):
    put_rejected(client, db, user, body, 400, ht.R_NO_DATE)


@pytest.mark.parametrize("value", BAD_DATE)
def test_date_of_birth_not_a_real_date(client, db, user, value):
    put_rejected(client, db, user, {"dateOfBirth": value}, 400, ht.R_BAD_DATE)


@pytest.mark.parametrize("offset", [0, 1, 2, 366, 3650])
def test_date_of_birth_today_or_later(client, db, user, offset):
    for _ in range(3):
        today = ht.utc_today()
        r = client.put_date(f"/hello/{user}", today + timedelta(days=offset))
        if ht.utc_today() == today:
            break
    assert r.status == 400 and r.error == ht.R_FUTURE, r
    assert_kept(client, db, user)


@pytest.mark.parametrize("value", ["9999-12-31", "3000-01-01", "2999-02-28", "9999-02-28"])
def test_date_of_birth_far_future(client, db, user, value):
    put_rejected(client, db, user, {"dateOfBirth": value}, 400, ht.R_FUTURE)


ACCEPTED = [
    ("extra-members", b'{"dateOfBirth":"2001-02-03","nickname":"b","n":1,"x":[1,{"y":null}]}',
     "2001-02-03"),
    ("extra-dateofbirth-lowercase", b'{"dateofbirth":"1999-01-01","dateOfBirth":"2001-02-03"}',
     "2001-02-03"),
    ("whitespace", b' \n\t{ "dateOfBirth" :\r\n "2001-02-03" } \n', "2001-02-03"),
    ("escaped-digits", b'{"dateOfBirth":"\\u0032001-02-03"}', "2001-02-03"),
    ("unicode-member", '{"dateOfBirth":"2001-02-03","n\u00e4me":"J\u00fcrgen \u263a"}'.encode(),
     "2001-02-03"),
    ("leap-day", b'{"dateOfBirth":"2004-02-29"}', "2004-02-29"),
    ("year-1000", b'{"dateOfBirth":"1000-01-01"}', "1000-01-01"),
    ("end-of-year", b'{"dateOfBirth":"1999-12-31"}', "1999-12-31"),
]


@pytest.mark.parametrize("body,stored", [(b, s) for _, b, s in ACCEPTED],
                         ids=[i for i, _, _ in ACCEPTED])
def test_accepted_bodies(client, db, names, body, stored):
    name = names.new()
    r = client.put(f"/hello/{name}", body)
    assert r.status == 204 and r.body == b"", r
    assert db.date_of_birth(name) == stored
    assert_kept(client, db, name, kept=stored)


# ---- Content-Type -------------------------------------------------------------------

@pytest.mark.parametrize("content_type", [
    None, "application/json", "application/json; charset=utf-8", "APPLICATION/JSON",
    "Application/JSON", "application/json;charset=UTF-8", "application/json ; charset=utf-8",
])
def test_content_type_accepted(client, db, names, content_type):
    name = names.new()
    r = client.put_date(f"/hello/{name}", "1988-08-08", content_type=content_type)
    assert r.status == 204, r
    assert db.date_of_birth(name) == "1988-08-08"


@pytest.mark.parametrize("content_type", [
    "text/plain", "application/x-www-form-urlencoded", "application/jsonp", "text/json",
    "application/json-patch+json", "application/problem+json", "multipart/form-data",
    "application/xml", "application", "json", "application/jsonx; charset=utf-8",
])
def test_content_type_refused_415(client, db, user, content_type):
    r = client.put_date(f"/hello/{user}", "2001-01-01", content_type=content_type)
    assert r.status == 415, r
    assert r.error == ht.R_MEDIA
    assert_kept(client, db, user)


def test_curl_default_form_content_type_is_415(client, db, user):
    """The docs' example: curl -d without -H sends a form Content-Type."""
    r = client.put(f"/hello/{user}", b'{"dateOfBirth":"1990-06-16"}',
                   content_type="application/x-www-form-urlencoded")
    assert r.status == 415 and r.error == ht.R_MEDIA
    assert_kept(client, db, user)


# ---- size -------------------------------------------------------------------------

def test_body_of_exactly_the_limit_is_accepted(client, db, user):
    r = client.put(f"/hello/{user}", padded(4096, "2002-03-04"))
    assert r.status == 204, r
    assert_kept(client, db, user, kept="2002-03-04")


def test_body_of_limit_plus_one_is_413(client, db, user):
    put_rejected(client, db, user, padded(4097, "2002-03-04"), 413,
                 "request body too large: the limit is 4096 bytes")


def test_docs_example_5000_spaces_is_413(client, db, user):
    put_rejected(client, db, user, b" " * 5000, 413,
                 "request body too large: the limit is 4096 bytes")


def test_large_invalid_body_is_413_not_400(client, db, user):
    put_rejected(client, db, user, b"\xff" * 100000, 413,
                 "request body too large: the limit is 4096 bytes")


def partial_request(port, path, declared, sent, extra_headers=b""):
    """Headers announcing `declared` bytes of body, then only `sent`; the socket
    stays open. Returns the socket."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(b"PUT " + path.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
              b"Content-Type: application/json\r\nContent-Length: %d\r\n" % declared +
              extra_headers + b"\r\n" + sent)
    return s


def read_response_bytes(s, timeout):
    """Reads until the server closes or timeout; returns (bytes, seconds)."""
    start = time.monotonic()
    s.settimeout(timeout)
    out = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
    except socket.timeout:
        pass
    return out, time.monotonic() - start


def test_content_length_over_limit_is_refused_before_the_body(client, db, user, httpd):
    """Content-Length: 10 MB with a few bytes sent: 413 arrives at once."""
    s = partial_request(httpd.port, f"/hello/{user}", 10 * 1024 * 1024, b'{"dateOf')
    start = time.monotonic()
    try:
        out, elapsed = read_response_bytes(s, 5)
    finally:
        s.close()
    assert out.startswith(b"HTTP/1.1 413 "), out
    assert time.monotonic() - start < 2, elapsed
    assert b"request body too large: the limit is 4096 bytes" in out
    assert_kept(client, db, user)


def test_content_length_over_limit_with_expect_gets_no_100_continue(client, db, user, httpd):
    """Refused before any byte of the body is read: no 100 Continue is sent."""
    s = partial_request(httpd.port, f"/hello/{user}", 10 * 1024 * 1024, b"",
                        b"Expect: 100-continue\r\n")
    try:
        out, elapsed = read_response_bytes(s, 5)
    finally:
        s.close()
    assert out.startswith(b"HTTP/1.1 413 "), out
    assert elapsed < 2
    assert_kept(client, db, user)


def test_content_length_over_limit_through_the_checked_client(client, db, user):
    """The same refusal, read and checked like every other response."""
    r = client.put(f"/hello/{user}", None, content_length=10 * 1024 * 1024,
                   raw_body=b'{"dateOfBirth":"2000-01-01"}')
    assert r.status == 413
    assert r.error == "request body too large: the limit is 4096 bytes"
    assert r.elapsed < 2
    assert_kept(client, db, user)


def test_chunked_valid_body_is_accepted(client, db, user):
    body = b'{"dateOfBirth":"2003-04-05","x":"y"}'
    r = client.put(f"/hello/{user}", chunks=[body[:5], body[5:17], body[17:]])
    assert r.status == 204, r
    assert_kept(client, db, user, kept="2003-04-05")


def test_chunked_body_of_exactly_the_limit_is_accepted(client, db, user):
    body = padded(4096, "2003-04-06")
    r = client.put(f"/hello/{user}", chunks=[body[:1000], body[1000:3000], body[3000:]])
    assert r.status == 204, r
    assert_kept(client, db, user, kept="2003-04-06")


def test_chunked_body_over_the_limit_is_413(client, db, user):
    body = padded(4097, "2003-04-07")
    r = client.put(f"/hello/{user}", chunks=[body[:2000], body[2000:]])
    assert r.status == 413, r
    assert r.error == "request body too large: the limit is 4096 bytes"
    assert_kept(client, db, user)


def test_chunked_body_is_refused_as_soon_as_the_limit_is_passed(client, db, user, httpd):
    """A chunk of limit+1 bytes, and the body never finished: 413 at once."""
    s = socket.create_connection(("127.0.0.1", httpd.port), timeout=5)
    try:
        s.sendall(b"PUT /hello/" + user.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                  b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                  b"1001\r\n" + b" " * 4097 + b"\r\n")
        out, elapsed = read_response_bytes(s, 5)
    finally:
        s.close()
    assert out.startswith(b"HTTP/1.1 413 "), out
    assert elapsed < 2
    assert_kept(client, db, user)


def test_location_with_its_own_limit(client, db, names):
    """/small has HelloMaxBodySize 64."""
    name = names.new()
    r = client.put(f"/small/{name}", padded(64, "1977-07-07"))
    assert r.status == 204, r
    assert db.date_of_birth(name) == "1977-07-07"
    r = client.put(f"/small/{name}", padded(65, "1978-08-08"))
    assert r.status == 413
    assert r.error == "request body too large: the limit is 64 bytes"
    body = padded(65, "1978-08-08")
    r = client.put(f"/small/{name}", chunks=[body[:30], body[30:]])
    assert r.status == 413
    assert r.error == "request body too large: the limit is 64 bytes"
    assert db.date_of_birth(name) == "1977-07-07"
    # The same 65 bytes are fine at /hello (default limit), for the same user.
    r = client.put(f"/hello/{name}", padded(65, "1978-08-08"))
    assert r.status == 204
    assert db.date_of_birth(name) == "1978-08-08"
    r = client.get(f"/small/{name}")
    assert r.status == 200 and r.message.startswith(f"Hello, {name}!")


# ---- unreadable and slow bodies --------------------------------------------------------

@pytest.mark.parametrize("raw", [
    b"zz\r\n{}\r\n0\r\n\r\n",                 # chunk size not hex
    b"5\r\n{\"a\":1}\r\n0\r\n\r\n",           # chunk longer than its size
    b"-1\r\n{}\r\n0\r\n\r\n",                 # negative chunk size
], ids=["not-hex", "overlong-chunk", "negative"])
def test_malformed_chunked_body_is_400_could_not_be_read(client, db, user, raw):
    r = client.put(f"/hello/{user}", None, headers={"Transfer-Encoding": "chunked"},
                   raw_body=raw)
    assert r.status == 400, r
    assert r.error == ht.R_READ, r
    assert_kept(client, db, user)


@pytest.fixture(scope="module")
def slow_httpd(db, tmp_path_factory):
    """An httpd that waits only 1 s for a request body."""
    server = ht.Httpd(tmp_path_factory.mktemp("httpd-slow"), db=db,
                      reqtimeout="header=10 body=1")
    try:
        server.start()
        yield server
    finally:
        server.stop()
    server.assert_healthy()


def test_body_not_received_in_time_is_408(slow_httpd, db, names):
    client = slow_httpd.client()
    name = names.new()
    assert client.put_date(f"/hello/{name}", KEPT).status == 204
    r = client.put(f"/hello/{name}", None, content_length=40,
                   raw_body=b'{"dateOfBirth":')
    assert r.status == 408, r
    assert r.error == ht.R_TIMEOUT
    assert r.elapsed < 5
    assert_kept(client, db, name)


@pytest.mark.parametrize("method,content_type,status,reason", [
    ("PUT", "text/plain", 415, ht.R_MEDIA),
    ("DELETE", None, 405, ht.R_METHOD),
], ids=["415", "405"])
def test_order_earlier_checks_win_over_a_body_that_never_arrives(slow_httpd, db, names, method,
                                                                 content_type, status, reason):
    """Content-Type (step 4) and method (step 2) decide before the body is read
    (step 5): a body that never arrives does not turn them into a 408."""
    client = slow_httpd.client()
    name = names.new()
    assert client.put_date(f"/hello/{name}", KEPT).status == 204
    r = client.request(method, f"/hello/{name}", None, content_type=content_type,
                       content_length=40, raw_body=b'{"dateOfBirth":')
    assert r.status == status, r
    assert r.error == reason
    assert_kept(client, db, name)
