"""The checker has teeth: responses that break docs/openapi.yaml are refused.
(No server needed: synthetic responses.)"""
import http.client
import io

import pytest

import hellotest as ht


def response(method, path, status, headers=(), body=b"", trailing=b""):
    raw = "".join(f"{k}: {v}\r\n" for k, v in headers).encode() + b"\r\n"
    return ht.Response(method, path, status, "", http.client.parse_headers(io.BytesIO(raw)),
                       body, trailing, [], 0.0)


JSON = ("Content-Type", "application/json")
ERR = b'{"error":"x"}'

GOOD = [
    response("GET", "/hello/bob", 200, [JSON], b'{"message":"Hello, bob! Happy birthday!"}'),
    response("GET", "/hello/bob", 200, [JSON],
             b'{"message":"Hello, bob! Your birthday is in 365 day(s)"}'),
    response("HEAD", "/hello/bob", 200, [JSON, ("Content-Length", "40")]),
    response("PUT", "/hello/bob", 204),
    response("GET", "/hello/bob", 404, [JSON], ERR),
    response("GET", "/hello/a/b", 404, [JSON], ERR),
    response("PUT", "/hello/bob", 413, [JSON], ERR),
    response("DELETE", "/hello/bob", 405, [JSON, ("Allow", "GET, HEAD, PUT")], ERR),
    response("FOO", "/hello/bob", 405, [JSON, ("Allow", "GET, HEAD, PUT")], ERR),
    response("GET", "/hello/bob", 503, [JSON, ("Retry-After", "5")], ERR),
]

BAD = {
    "500": response("GET", "/hello/bob", 500, [JSON], ERR),
    "502": response("GET", "/hello/bob", 502, [JSON], ERR),
    "html-error": response("GET", "/hello/bob", 404, [("Content-Type", "text/html")], b"<p>"),
    "no-content-type": response("GET", "/hello/bob", 400, [], ERR),
    "error-not-json": response("GET", "/hello/bob", 400, [JSON], b"oops"),
    "error-extra-member": response("GET", "/hello/bob", 400, [JSON], b'{"error":"x","y":1}'),
    "error-empty": response("GET", "/hello/bob", 400, [JSON], b'{"error":""}'),
    "message-extra-member": response("GET", "/hello/bob", 200, [JSON],
                                     b'{"message":"Hello, bob! Happy birthday!","x":1}'),
    "message-0-days": response("GET", "/hello/bob", 200, [JSON],
                               b'{"message":"Hello, bob! Your birthday is in 0 day(s)"}'),
    "message-366-days": response("GET", "/hello/bob", 200, [JSON],
                                 b'{"message":"Hello, bob! Your birthday is in 366 day(s)"}'),
    "message-1-day": response("GET", "/hello/bob", 200, [JSON],
                              b'{"message":"Hello, bob! Your birthday is in 1 day"}'),
    "204-with-body": response("PUT", "/hello/bob", 204, [], b"x"),
    "head-with-body": response("HEAD", "/hello/bob", 200, [JSON], b"x"),
    "bytes-after-response": response("GET", "/hello/bob", 404, [JSON], ERR, trailing=b"x"),
    "405-without-allow": response("DELETE", "/hello/bob", 405, [JSON], ERR),
    "503-without-retry-after": response("GET", "/hello/bob", 503, [JSON], ERR),
    "503-retry-after-not-integer": response("GET", "/hello/bob", 503,
                                            [JSON, ("Retry-After", "soon")], ERR),
    "undocumented-status": response("GET", "/hello/bob", 413, [JSON], ERR),
    "put-200": response("PUT", "/hello/bob", 200, [JSON], b'{"message":"Hello, b! Happy birthday!"}'),
    "delete-200": response("DELETE", "/hello/bob", 200, [JSON],
                           b'{"message":"Hello, bob! Happy birthday!"}'),
}


@pytest.mark.parametrize("resp", GOOD, ids=[f"{r.method}-{r.status}" for r in GOOD])
def test_checker_accepts_contract_responses(resp):
    ht.Contract.get().check(resp)


@pytest.mark.parametrize("name", sorted(BAD))
def test_checker_refuses_broken_responses(name):
    with pytest.raises(Exception):
        ht.Contract.get().check(BAD[name])


def test_python_rule_29_february():
    from datetime import date
    assert ht.birthday_in(date(2000, 2, 29), 2027) == date(2027, 2, 28)
    assert ht.birthday_in(date(2000, 2, 29), 2028) == date(2028, 2, 29)
    assert ht.days_until_birthday(date(2000, 2, 29), date(2027, 3, 1)) == 365  # to 2028-02-29
