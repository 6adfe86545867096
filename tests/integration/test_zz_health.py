"""Last (files run in name order, but this holds in any order): no httpd of
the session has crashed a child or answered a 5xx other than 503, and no
input of the hostile kind makes the module answer 500 or crash."""
import socket

import pytest

import hellotest as ht

HOSTILE = [
    b"PUT /hello/bob HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
    b"PUT /hello/bob HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
    b"PUT /hello/bob HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n",
    b"PUT /hello/bob HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n{}",
    b"PUT /hello/bob HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n",
    b"PUT /hello/bob HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3"
    b"\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
    b"PUT /hello/bob HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"ffffffffffffffffffff\r\n",
    b"PUT /hello/bob HTTP/1.1\r\nHost: x\r\nContent-Type: \r\nContent-Length: 2\r\n\r\n{}",
    b"PUT /hello/bob HTTP/1.1\r\nHost: x\r\nContent-Type: ;;;\r\nContent-Length: 2\r\n\r\n{}",
    b"PUT /hello/bob HTTP/1.1\r\nHost: x\r\nContent-Length: 4000\r\n\r\n" + b"[" * 4000,
    b"PUT /hello/bob HTTP/1.1\r\nHost: x\r\nContent-Length: 4000\r\n\r\n" +
    (b'{"a":' * 800).ljust(4000, b" "),
    b"PUT /hello/bob HTTP/1.1\r\nHost: x\r\nContent-Length: 40\r\n\r\n" +
    b'{"dateOfBirth":"2000-01-01","n":1e99999}',
    b"PUT /hello/bob HTTP/1.1\r\nHost: x\r\nContent-Length: 27\r\n\r\n" +
    b'{"dateOfBirth":"\\u0000000"}',
    b"PUT /hello/bob HTTP/1.1\r\nHost: x\r\nContent-Length: 33\r\n\r\n" +
    b'{"dateOfBirth":"2000-01-01\\u0000"}',
    b"GET /hello/%00 HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /hello/%%% HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /hello/" + b"a" * 4000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /hello/bob HTTP/1.0\r\n\r\n",
    b"GET /hello/bob HTTP/1.1\r\nHost: x\r\nX: " + b"y" * 6000 + b"\r\n\r\n",
    b"HEAD /hello/bob1 HTTP/1.1\r\nHost: x\r\n\r\n",
]


@pytest.mark.parametrize("raw", HOSTILE, ids=[f"h{i}" for i in range(len(HOSTILE))])
def test_hostile_requests_never_500(httpd, raw):
    with socket.create_connection(("127.0.0.1", httpd.port), timeout=10) as s:
        s.sendall(raw.replace(b"Host: x", b"Host: 127.0.0.1").replace(
            b"HTTP/1.1\r\n", b"HTTP/1.1\r\nConnection: close\r\n", 1))
        out = b""
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                out += chunk
        except socket.timeout:
            pass
    status_line = out.split(b"\r\n", 1)[0]
    assert status_line.startswith(b"HTTP/1."), out[:300]
    status = int(status_line.split()[1])
    assert status != 500 and (status < 500 or status == 503), out[:500]
    assert httpd.crash_lines() == []


def test_no_child_crashed_and_no_500_anywhere(httpd):
    """Every httpd started so far in the session (the default one included)."""
    assert ht.Httpd.instances
    for server in ht.Httpd.instances:
        server.assert_healthy()
