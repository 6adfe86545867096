"""docs/API.md, line by line: resource, usernames, methods, GET, HEAD, errors
and the order of checks. Every response is also checked against
docs/openapi.yaml by the client (hellotest.Contract)."""
from datetime import date, timedelta

import pytest

import hellotest as ht


def greet(client, path):
    """GET path: (response, the UTC date the request was answered on)."""
    for _ in range(3):
        before = ht.utc_today()
        r = client.get(path)
        if ht.utc_today() == before:
            return r, before
    raise AssertionError("the UTC date kept changing")


def saved(client, user, dob, base="/hello"):
    r = client.put_date(f"{base}/{user}", dob)
    assert r.status == 204, r
    return r


def assert_greeting(client, user, dob, path=None):
    r, today = greet(client, path or f"/hello/{user}")
    assert r.status == 200, r
    assert r.message == ht.expected_message(user, dob, today), (dob, today)
    return r, today


# ---- the birthday rule of the tests themselves ---------------------------------

def test_python_rule_examples_from_the_docs():
    """The independent rule reproduces every example of docs/API.md
    (today = 2025-06-15)."""
    today = date(2025, 6, 15)
    assert ht.expected_message("alice", date(1990, 6, 16), today) == \
        "Hello, alice! Your birthday is in 1 day(s)"
    assert ht.expected_message("bob", date(2000, 6, 14), today) == \
        "Hello, bob! Your birthday is in 364 day(s)"
    assert ht.expected_message("Alice", date(1985, 6, 15), today) == \
        "Hello, Alice! Happy birthday!"
    assert ht.expected_message("carol", date(2000, 2, 29), today) == \
        "Hello, carol! Your birthday is in 258 day(s)"
    assert ht.days_until_birthday(date(2000, 2, 29), date(2027, 2, 28)) == 0
    assert ht.days_until_birthday(date(2000, 2, 29), date(2028, 2, 28)) == 1
    assert ht.days_until_birthday(date(2000, 3, 1), date(2028, 3, 2)) == 364
    assert ht.days_until_birthday(date(2000, 3, 1), date(2027, 3, 2)) == 365


# ---- PUT then GET ------------------------------------------------------------------

def test_put_new_user_then_get(client, names, db):
    user = names.new()
    dob = date(1990, 6, 16)
    r = client.put_date(f"/hello/{user}", dob)
    assert r.status == 204
    assert r.body == b""
    assert db.date_of_birth(user) == "1990-06-16"
    assert_greeting(client, user, dob)


def test_get_message_forms_and_content_type(client, names):
    user = names.new()
    saved(client, user, date(1990, 1, 1))
    r, _ = greet(client, f"/hello/{user}")
    assert r.status == 200
    assert r.header("Content-Type").split(";")[0].strip() == "application/json"
    assert set(r.json()) == {"message"}


@pytest.mark.parametrize("days_ahead", [1, 2, 7, 31, 59, 100, 183, 250, 300, 360, 364])
def test_birthday_in_n_days(client, names, days_ahead):
    """dob = the day days_ahead days from today, in the year 2000; the
    expected N is the Python rule's."""
    user = names.new()
    dob = ht.same_day_in_2000(ht.utc_today() + timedelta(days=days_ahead))
    saved(client, user, dob)
    r, today = assert_greeting(client, user, dob)
    assert r.message.endswith(" day(s)")


def test_birthday_today_is_happy_birthday(client, names):
    user = names.new()
    dob = ht.same_day_in_2000(ht.utc_today())
    saved(client, user, dob)
    r, today = greet(client, f"/hello/{user}")
    if ht.days_until_birthday(dob, today) != 0:
        pytest.skip("the UTC date changed during the test")
    assert r.message == f"Hello, {user}! Happy birthday!"


def test_birthday_tomorrow_is_one_day_literal_day_s(client, names):
    user = names.new()
    dob = ht.same_day_in_2000(ht.utc_today() + timedelta(days=1))
    saved(client, user, dob)
    r, today = greet(client, f"/hello/{user}")
    assert r.message == ht.expected_message(user, dob, today)
    if ht.days_until_birthday(dob, today) == 1:
        assert r.message == f"Hello, {user}! Your birthday is in 1 day(s)"


def test_birthday_yesterday_is_364_or_365_days(client, names):
    user = names.new()
    dob = ht.same_day_in_2000(ht.utc_today() - timedelta(days=1))
    saved(client, user, dob)
    r, today = assert_greeting(client, user, dob)
    assert ht.days_until_birthday(dob, today) in (364, 365)


@pytest.mark.parametrize("dob", [date(2000, 2, 29), date(1996, 2, 29), date(1004, 2, 29)])
def test_29_february_birthday(client, names, dob, db):
    user = names.new()
    saved(client, user, dob)
    assert db.date_of_birth(user) == dob.isoformat()
    r, today = assert_greeting(client, user, dob)
    # The rule itself: in a year without 29 February, 28 February.
    nxt = today.year if ht.birthday_in(dob, today.year) >= today else today.year + 1
    import calendar
    want = date(nxt, 2, 29) if calendar.isleap(nxt) else date(nxt, 2, 28)
    assert ht.days_until_birthday(dob, today) == (want - today).days


def test_28_february_and_1_march_birthdays(client, names):
    for dob in (date(2001, 2, 28), date(2001, 3, 1), date(2000, 3, 1), date(1999, 12, 31),
                date(2000, 1, 1)):
        user = names.new()
        saved(client, user, dob)
        assert_greeting(client, user, dob)


def test_update_replaces_the_date(client, names, db):
    user = names.new()
    first = client.put_date(f"/hello/{user}", "1980-03-04")
    assert first.status == 204 and first.body == b""
    second = client.put_date(f"/hello/{user}", "1991-11-12")
    assert second.status == 204 and second.body == b""
    assert db.date_of_birth(user) == "1991-11-12"
    assert db.sql(f"SELECT COUNT(*) FROM hello_users WHERE username = '{user}'") == [["1"]]
    assert_greeting(client, user, date(1991, 11, 12))


def test_new_user_and_update_answer_the_same(client, names):
    user = names.new()
    first = client.put_date(f"/hello/{user}", "1980-03-04")
    second = client.put_date(f"/hello/{user}", "1980-03-04")
    ignore = {"date"}
    assert first.status == second.status == 204
    assert first.body == second.body == b""
    assert {k.lower(): v for k, v in first.headers.items() if k.lower() not in ignore} == \
        {k.lower(): v for k, v in second.headers.items() if k.lower() not in ignore}


def test_unknown_user_is_404(client, names):
    user = names.new()
    r = client.get(f"/hello/{user}")
    assert r.status == 404
    assert r.error == ht.R_UNKNOWN
    h = client.head(f"/hello/{user}")
    assert h.status == 404 and h.body == b""


def test_year_1000_is_the_earliest(client, names, db):
    user = names.new()
    saved(client, user, date(1000, 1, 1))
    assert db.date_of_birth(user) == "1000-01-01"
    assert_greeting(client, user, date(1000, 1, 1))


def test_yesterday_is_accepted(client, names, db):
    for _ in range(3):
        today = ht.utc_today()
        user = names.new()
        yesterday = today - timedelta(days=1)
        r = client.put_date(f"/hello/{user}", yesterday)
        if ht.utc_today() == today:
            break
    assert r.status == 204
    assert db.date_of_birth(user) == yesterday.isoformat()
    assert_greeting(client, user, yesterday)


# ---- usernames -----------------------------------------------------------------------

def test_usernames_are_case_sensitive(client, names, db):
    lower = names.new()
    upper = lower.capitalize()
    shout = lower.upper()
    saved(client, lower, date(1990, 1, 2))
    saved(client, upper, date(1985, 7, 8))
    r = client.get(f"/hello/{shout}")
    assert r.status == 404 and r.error == ht.R_UNKNOWN
    assert db.date_of_birth(lower) == "1990-01-02"
    assert db.date_of_birth(upper) == "1985-07-08"
    assert db.date_of_birth(shout) is None
    rows = db.sql(f"SELECT username FROM hello_users WHERE LOWER(username) = '{lower}' "
                  "ORDER BY username")
    assert sorted(r[0] for r in rows) == sorted([lower, upper])
    r1, _ = assert_greeting(client, lower, date(1990, 1, 2))
    r2, _ = assert_greeting(client, upper, date(1985, 7, 8))
    assert r1.message.startswith(f"Hello, {lower}!")
    assert r2.message.startswith(f"Hello, {upper}!")


def test_64_letters_is_the_longest(client, names, db):
    user = names.new(64)
    assert len(user) == 64
    saved(client, user, date(1970, 5, 6))
    assert db.date_of_birth(user) == "1970-05-06"
    assert_greeting(client, user, date(1970, 5, 6))


def test_one_letter_is_a_username(client, db):
    user = "Q"
    saved(client, user, date(1970, 5, 6))
    assert db.date_of_birth(user) == "1970-05-06"
    assert_greeting(client, user, date(1970, 5, 6))


def table_size(db):
    return int(db.sql("SELECT COUNT(*) FROM hello_users")[0][0])


def test_65_letters_is_400(client, names, db):
    user = names.new(65)
    before = table_size(db)
    for method in ("GET", "HEAD"):
        r = client.request(method, f"/hello/{user}")
        assert r.status == 400
        if method == "GET":
            assert r.error == ht.R_USERNAME
    r = client.put_date(f"/hello/{user}", "1990-01-01")
    assert r.status == 400 and r.error == ht.R_USERNAME
    assert table_size(db) == before


BAD_USERNAMES = [
    "alice1", "1", "a-b", "a_b", "a.b", "ab.", "a~b", "a+b", "a'b", "a%27b", "a%22b",
    "%C3%A9mile",          # émile
    "%C3%85sa",            # Åsa, a non-ASCII letter
    "%EF%BD%81",           # fullwidth a
    "a%20b", "%20alice", "alice%20", "a%09b", "a%2Cb", "a%3Bb", "a%3Db", "a%40b",
    "a%25b", "a%7Fb", "a%FFb", "a*b", "a:b", "a;b", "a,b", "a=b", "a@b", "a!b",
]


@pytest.mark.parametrize("username", BAD_USERNAMES)
def test_bad_usernames_are_400(client, db, username):
    before = table_size(db)
    r = client.get(f"/hello/{username}")
    assert r.status == 400, r
    assert r.error == ht.R_USERNAME
    r = client.put_date(f"/hello/{username}", "1990-01-01")
    assert r.status == 400, r
    assert r.error == ht.R_USERNAME
    assert table_size(db) == before


def test_percent_encoded_letters_name_the_same_user(client, names, db):
    user = names.new()
    encoded = "".join(f"%{ord(c):02X}" for c in user)
    mixed = f"%{ord(user[0]):02x}" + user[1:]
    r = client.put_date(f"/hello/{mixed}", "1999-09-09")
    assert r.status == 204
    assert db.date_of_birth(user) == "1999-09-09"
    for path in (f"/hello/{user}", f"/hello/{encoded}", f"/hello/{mixed}"):
        r, _ = assert_greeting(client, user, date(1999, 9, 9), path=path)
        assert r.message.startswith(f"Hello, {user}!"), r  # echoed decoded
    # %41 is 'A': a different user from 'a...'
    upper_first = f"%{ord(user[0].upper()):02X}" + user[1:]
    r = client.get(f"/hello/{upper_first}")
    assert r.status == 404 and r.error == ht.R_UNKNOWN


def test_alice_example(client, db):
    """The user of docs/API.md, /hello/alice and /hello/%61lice."""
    saved(client, "alice", date(1990, 6, 16))
    r1, today = assert_greeting(client, "alice", date(1990, 6, 16))
    r2, _ = assert_greeting(client, "alice", date(1990, 6, 16), path="/hello/%61lice")


# ---- paths ---------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/hello", "/hello/", "/hello/a/b", "/hello/alice/",
                                  "/hello/a/b/c", "/hello/alice/x", "/hello/alice/?q=1",
                                  "/hello/?x=1"])
@pytest.mark.parametrize("method", ["GET", "PUT", "HEAD", "DELETE"])
def test_paths_without_one_username_are_404(client, path, method):
    kw = {"body": {"dateOfBirth": "2000-01-01"}} if method == "PUT" else {}
    r = client.request(method, path, **kw)
    assert r.status == 404, r
    if method != "HEAD":
        assert r.error == "not found: use /hello/<username>"


def test_404_reason_names_the_location(client):
    r = client.get("/small/")
    assert r.status == 404
    assert r.error == "not found: use /small/<username>"
    r = client.get("/small/a/b")
    assert r.status == 404
    assert r.error == "not found: use /small/<username>"


def test_encoded_slash_is_404_json(client):
    """Apache refuses %2F (AllowEncodedSlashes Off) with 404; the body is
    JSON like every error answer (the checker asserts it)."""
    r = client.get("/hello/a%2Fb")
    assert r.status == 404
    assert r.error
    r = client.put_date("/hello/a%2Fb", "2000-01-01")
    assert r.status == 404


@pytest.mark.parametrize("path", ["/hello/a%zz", "/hello/%", "/hello/a%4", "/hello/%G1"])
def test_bad_percent_escape_is_400_json(client, path):
    r = client.get(path)
    assert r.status == 400, r
    assert r.error


def test_query_string_is_ignored(client, names):
    user = names.new()
    saved(client, user, date(1990, 1, 2))
    assert_greeting(client, user, date(1990, 1, 2), path=f"/hello/{user}?x=1&user=bob")


# ---- methods ---------------------------------------------------------------------------

@pytest.mark.parametrize("method", ["DELETE", "POST", "PATCH", "OPTIONS", "TRACE", "FOO",
                                    "PROPFIND", "CONNECTX"])
def test_other_methods_are_405(client, names, method):
    user = names.new()
    kw = {"body": {"dateOfBirth": "2000-01-01"},
          "content_type": "application/json"} if method in ("POST", "PATCH") else {}
    r = client.request(method, f"/hello/{user}", **kw)
    assert r.status == 405, r
    assert r.header("Allow") == ht.ALLOW
    assert r.error == ht.R_METHOD


def test_405_does_not_write(client, names, db):
    user = names.new()
    for method in ("POST", "PATCH"):
        r = client.request(method, f"/hello/{user}", body={"dateOfBirth": "2000-01-01"},
                           content_type="application/json")
        assert r.status == 405
    assert db.date_of_birth(user) is None
    saved(client, user, date(1990, 2, 3))
    r = client.request("DELETE", f"/hello/{user}")
    assert r.status == 405
    assert db.date_of_birth(user) == "1990-02-03"


# ---- HEAD ------------------------------------------------------------------------------

COMPARED_HEADERS = ("Content-Type", "Content-Length", "Allow", "Retry-After",
                    "Content-Encoding", "Cache-Control")


def assert_head_like_get(client, path):
    for _ in range(3):
        g = client.get(path)
        h = client.head(path)
        again = client.get(path)
        if again.body == g.body:  # the UTC date did not change in between
            break
    assert h.status == g.status, (g, h)
    assert h.body == b""
    for name in COMPARED_HEADERS:
        assert h.header(name) == g.header(name), (name, g, h)
    return g, h


def test_head_of_a_user(client, names):
    user = names.new()
    saved(client, user, date(1990, 12, 24))
    g, h = assert_head_like_get(client, f"/hello/{user}")
    assert g.status == 200
    assert int(h.header("Content-Length")) == len(g.body)


@pytest.mark.parametrize("path", ["/hello/{unknown}", "/hello/bad1", "/hello/", "/hello/a/b",
                                  "/hello/a%2Fb", "/hello/a%zz", "/small/{unknown}"])
def test_head_of_errors_is_like_get(client, names, path):
    g, h = assert_head_like_get(client, path.format(unknown=names.new()))
    assert g.status >= 400


# ---- errors: format -------------------------------------------------------------------

def test_error_bodies_are_single_member_objects(client, names):
    for r in (client.get("/hello/"), client.get("/hello/bad1"),
              client.request("DELETE", f"/hello/{names.new()}"),
              client.get(f"/hello/{names.new()}"),
              client.put(f"/hello/{names.new()}", b"[]")):
        assert list(r.json()) == ["error"], r
        assert r.header("Content-Type").split(";")[0] == "application/json"


def test_reason_with_quotes_is_escaped_json(client, names):
    r = client.put(f"/hello/{names.new()}", b'["1990-06-16"]')
    assert r.status == 400
    assert r.body == (b'{"error":"request body must be a JSON object such as '
                      b'{\\"dateOfBirth\\":\\"2000-01-31\\"}"}')
    assert r.error == ht.R_NOT_OBJECT


# ---- order of checks -------------------------------------------------------------------

def test_order_path_before_method(client):
    r = client.request("DELETE", "/hello/a/b")
    assert r.status == 404


def test_order_method_before_username(client):
    r = client.request("DELETE", "/hello/bob1")
    assert r.status == 405 and r.header("Allow") == ht.ALLOW


def test_order_username_before_content_type(client):
    r = client.put("/hello/bob1", b"nonsense" * 1000, content_type="text/plain")
    assert r.status == 400 and r.error == ht.R_USERNAME


def test_order_content_type_before_size_and_body(client, names):
    r = client.put(f"/hello/{names.new()}", b"x" * 5000, content_type="text/plain")
    assert r.status == 415 and r.error == ht.R_MEDIA
    r = client.put(f"/hello/{names.new()}", b"not json", content_type="text/plain")
    assert r.status == 415 and r.error == ht.R_MEDIA


def test_order_size_before_body(client, names):
    r = client.put(f"/hello/{names.new()}", b"x" * 5000)
    assert r.status == 413


def test_order_body_json_before_date_rules(client, names):
    # an invalid date inside an array is still "not an object"
    r = client.put(f"/hello/{names.new()}", b'[{"dateOfBirth":"2001-02-29"}]')
    assert r.status == 400 and r.error == ht.R_NOT_OBJECT
    # an impossible date in the future is "not a real date"
    r = client.put_date(f"/hello/{names.new()}", "2999-02-30")
    assert r.status == 400 and r.error == ht.R_BAD_DATE



@pytest.mark.parametrize("method,path,content_type,status", [
    ("PUT", "/hello/{u}", "text/plain", 415),
    ("PUT", "/hello/{u}/x", "application/json", 404),
    ("POST", "/hello/{u}", "application/json", 405),
    ("DELETE", "/hello/{u}", None, 405),
], ids=["415", "404", "405-post", "405-delete"])
def test_order_earlier_checks_win_over_an_unreadable_body(client, names, method, path,
                                                          content_type, status):
    """Reading the body is step 5: path (1), method (2) and Content-Type (4)
    decide before it, even when the body is malformed chunked encoding."""
    r = client.request(method, path.format(u=names.new()), None, content_type=content_type,
                       headers={"Transfer-Encoding": "chunked"},
                       raw_body=b"zz\r\n{}\r\n0\r\n\r\n")
    assert r.status == status, r
