"""Slow and greedy clients, against a server with the harness's default
mod_reqtimeout settings:

(a) a huge Content-Length with only a few bytes behind it is refused (413)
    at once, without the server waiting for the rest;
(b) a 100 MB upload really streamed (chunked, and with its Content-Length)
    is refused (413) and leaves every child's memory (VmRSS) where it was;
(c) a slowloris header dribble is cut off by mod_reqtimeout within its
    configured bound while the server keeps serving everyone else.
"""
import inspect
import json
import re
import socket
import threading
import time
from datetime import date

import pytest

import floodgen as fg
import hellotest as ht

KEPT = "1977-03-14"
MAX_BODY = 4096
HUNDRED_MB = 100 * 1024 * 1024
RSS_LIMIT_KIB = 10 * 1024


@pytest.fixture(scope="module")
def greedy(tmp_path_factory):
    """An httpd and MariaDB of this module's own (the memory measured is of
    these children only), warmed up: the module has served every kind of
    answer the tests provoke before anything is measured."""
    root = tmp_path_factory.mktemp("greedy")
    db = ht.MariaDB(root / "mariadb")
    server = None
    try:
        db.create()
        server = ht.PinnedHttpd(root / "httpd", db=db)
        server.start()
        client = server.client()
        for name in ("greedyAlice", "greedyBob", "greedyCarol"):
            assert client.put_date(f"/hello/{name}", KEPT).status == 204
        for _ in range(20):
            assert client.get("/hello/greedyAlice").status == 200
            assert client.put("/hello/greedyWarm", chunks=[b" " * 1000] * 6).status == 413
            assert client.put("/hello/greedyWarm", b" " * 5000).status == 413
        yield server, db
    finally:
        if server is not None:
            server.stop()
        db.stop()


def reqtimeout_bounds(server):
    """(first, last) seconds mod_reqtimeout allows for the request line and
    headers, from the generated httpd.conf; checks that the module is loaded
    and that the setting is the harness's default."""
    conf = server.conf.read_text()
    assert re.search(r"^LoadModule reqtimeout_module\s+\S*mod_reqtimeout\.so$", conf, re.M), conf
    default = inspect.signature(ht.Httpd.__init__).parameters["reqtimeout"].default
    assert server.reqtimeout == default
    m = re.search(r"^RequestReadTimeout\s+(.*)$", conf, re.M)
    assert m and m.group(1).strip() == default, conf
    header = re.search(r"header=(\d+)(?:-(\d+))?", default)
    first = int(header.group(1))
    return first, int(header.group(2) or first)


def read_answer(sock, method=b"PUT", timeout=5.0):
    sock.settimeout(timeout)
    reader = fg.Reader(sock)
    resp = fg.read_response(reader, method)
    return resp, reader


def assert_413(resp):
    assert resp is not None, "the connection closed without an answer"
    assert resp.status == 413, resp.short()
    assert resp.media_type == b"application/json", resp.short()
    assert json.loads(resp.body) == {"error": ht.R_TOO_LARGE.format(limit=MAX_BODY)}


def serving_pids(server, username):
    """The pids of the children that logged a request for /hello/username
    (mod_hello logs each one at debug level with its pid)."""
    pat = re.compile(r"\[pid (\d+):tid \d+\].*mod_hello: PUT /hello/" + re.escape(username) + r" ")
    return sorted({int(m.group(1)) for m in map(pat.search, server.error_log_text().splitlines())
                   if m})


# ---- (a) a huge Content-Length, a few bytes -------------------------------------------------------

def test_huge_content_length_with_a_few_bytes_is_413_at_once(greedy):
    server, db = greedy
    head = (b"PUT /hello/greedyAlice HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nContent-Length: 100000000\r\n\r\n")
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        started = time.monotonic()
        sock.sendall(head + b'{"dateOfBirth":"19')
        resp, reader = read_answer(sock)
        answered = time.monotonic() - started
        assert_413(resp)
        assert answered < 2.0, f"the 413 took {answered:.2f} s"
        assert b"close" in (resp.header("Connection") or b"").lower(), resp.headers
        # The server does not wait for the other 99,999,981 bytes: it closes.
        sock.settimeout(2.0)
        rest = reader.to_eof()
        closed = time.monotonic() - started
        assert rest == b"", rest[:200]
        assert closed < 2.0, f"the server kept the connection {closed:.2f} s"
    print(f"\n413 after {answered * 1000:.1f} ms, connection closed after {closed * 1000:.1f} ms")
    assert db.date_of_birth("greedyAlice") == KEPT


# ---- (b) a 100 MB upload -----------------------------------------------------------------------

def stream_upload(port, head, framing, total, deadline_s=20.0, piece=1 << 20):
    """Sends head and then total bytes of body as fast as the socket takes
    them, while a reader thread waits for the answer. Returns (response,
    seconds to the answer, bytes the socket took, seconds sending, how the
    sending ended)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
    result = {}
    started = time.monotonic()

    def read():
        try:
            resp, reader = read_answer(sock, timeout=deadline_s + 5)
            result["resp"] = resp
            result["at"] = time.monotonic() - started
        except Exception as e:  # noqa: BLE001 - reported below
            result["error"] = repr(e)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    sent, ended = 0, "all sent"
    data = b" " * piece
    if framing == "chunked":
        data = b"%x\r\n" % piece + data + b"\r\n"
    try:
        sock.sendall(head)
        while sent < total:
            if time.monotonic() - started > deadline_s:
                ended = f"stopped at the {deadline_s:.0f} s bound"
                break
            sock.sendall(data)
            sent += piece
        else:
            if framing == "chunked":
                sock.sendall(b"0\r\n\r\n")
    except (BrokenPipeError, ConnectionResetError) as e:
        ended = f"the server closed ({e.__class__.__name__})"
    except socket.timeout:
        ended = "the server stopped reading (send timed out)"
    sending = time.monotonic() - started
    reader.join(deadline_s + 10)
    sock.close()
    assert "error" not in result, result["error"]
    return result.get("resp"), result.get("at"), sent, sending, ended


@pytest.mark.parametrize("framing", ["chunked", "content-length"])
def test_100mb_upload_is_413_and_does_not_grow_the_child(greedy, framing):
    server, db = greedy
    user = {"chunked": "greedyBob", "content-length": "greedyCarol"}[framing]
    length = (b"Transfer-Encoding: chunked" if framing == "chunked"
              else b"Content-Length: %d" % HUNDRED_MB)
    head = (b"PUT /hello/" + user.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\n" + length + b"\r\n\r\n")
    children = ht.child_pids(server.pid)
    assert children, "httpd has no children"
    before = {pid: ht.vm_rss_kib(pid) for pid in children}

    resp, answered_at, sent, sending, ended = stream_upload(server.port, head, framing,
                                                            HUNDRED_MB)
    time.sleep(0.5)
    after = {pid: ht.vm_rss_kib(pid) for pid in children}
    served_by = serving_pids(server, user)
    at = f"{answered_at * 1000:.1f} ms" if answered_at is not None else "never"
    report = (f"\n{framing}: answered after {at}; the socket "
              f"took {sent / 2**20:.1f} MiB in {sending:.2f} s ({ended})\n" + "\n".join(
                  f"  child {pid}{' (served the upload)' if pid in served_by else ''}: VmRSS "
                  f"{before[pid]} KiB before, {after[pid]} KiB after "
                  f"({(after[pid] or 0) - (before[pid] or 0):+d} KiB)" for pid in children))
    print(report)

    assert_413(resp)
    assert answered_at < 2.0, f"the 413 came after {answered_at:.2f} s" + report
    assert set(children) <= set(ht.child_pids(server.pid)), (
        "a child exited during the upload" + report)
    assert server.crash_lines() == []
    assert served_by and set(served_by) <= set(children), served_by
    for pid in children:
        assert after[pid] is not None, f"child {pid} is gone" + report
        assert after[pid] - before[pid] < RSS_LIMIT_KIB, (
            f"child {pid} grew {after[pid] - before[pid]} KiB during a refused upload" + report)
    assert db.date_of_birth(user) == KEPT
    # The server still serves this user.
    r = server.client().get(f"/hello/{user}")
    assert r.status == 200, r


# ---- (c) slowloris -----------------------------------------------------------------------------------

class Dribbler(threading.Thread):
    """Sends first, then one byte of drip every `every` seconds, until the
    server cuts the connection (or `limit` seconds pass)."""

    def __init__(self, port, first, drip, every=0.5, limit=30.0):
        super().__init__(daemon=True)
        self.port, self.first, self.drip, self.every, self.limit = port, first, drip, every, limit
        self.cut_after = None      # seconds from the first byte to the end
        self.how = None            # "408", "closed", "reset", "still open"
        self.answer = b""
        self.sent = 0

    def run(self):
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        started = time.monotonic()
        try:
            sock.sendall(self.first)
            sock.settimeout(self.every)
            i = 0
            while time.monotonic() - started < self.limit:
                try:
                    data = sock.recv(65536)
                    if not data:
                        self.how = "408" if self.answer.startswith(b"HTTP/1.1 408") else "closed"
                        break
                    self.answer += data
                    continue
                except socket.timeout:
                    pass
                try:
                    sock.sendall(self.drip[i % len(self.drip):i % len(self.drip) + 1])
                    self.sent += 1
                    i += 1
                except (BrokenPipeError, ConnectionResetError):
                    self.how = "408" if self.answer.startswith(b"HTTP/1.1 408") else "reset"
                    break
            else:
                self.how = "still open"
        except ConnectionResetError:
            self.how = "408" if self.answer.startswith(b"HTTP/1.1 408") else "reset"
        finally:
            self.cut_after = time.monotonic() - started
            sock.close()


def test_slowloris_is_cut_off_by_reqtimeout_while_others_are_served(greedy):
    server, db = greedy
    first, last = reqtimeout_bounds(server)
    port = server.port
    header_stage = [Dribbler(port, b"GET /hello/greedyAlice HTTP/1.1\r\nHost: 127.0.0.1\r\n",
                             b"X-Slowloris-%d: " % i + b"a" * 50 + b"\r\n") for i in range(8)]
    line_stage = [Dribbler(port, b"GET /hel", b"l"), Dribbler(port, b"G", b"ET /hello/x")]
    dribblers = header_stage + line_stage
    for d in dribblers:
        d.start()
    client = server.client()
    served, slowest = 0, 0.0
    today = {ht.utc_today()}
    started = time.monotonic()
    while any(d.is_alive() for d in dribblers) and time.monotonic() - started < last + 10:
        r = client.get("/hello/greedyAlice")
        today.add(ht.utc_today())
        assert r.status == 200, r
        assert r.message in {ht.expected_message("greedyAlice", date.fromisoformat(KEPT), d)
                             for d in today}
        slowest = max(slowest, r.elapsed)
        served += 1
        time.sleep(0.2)
    for d in dribblers:
        d.join(5)
    summary = "\n".join(f"  {d.first[:40]!r}: {d.how} after {d.cut_after:.2f} s "
                        f"({d.sent} bytes dribbled) {d.answer[:60]!r}" for d in dribblers)
    print(f"\nRequestReadTimeout header={first}-{last}: {served} other requests served "
          f"meanwhile, the slowest in {slowest * 1000:.0f} ms\n{summary}")
    for d in dribblers:
        assert d.how in ("408", "closed", "reset"), summary
        # Cut by the header timeout: not before it, and within its bound.
        assert first - 0.5 <= d.cut_after <= last + 1.5, summary
    for d in header_stage:
        if d.how == "408":
            # The request line named /hello/...: the 408 is the module's JSON.
            head, _, body = d.answer.partition(b"\r\n\r\n")
            assert re.search(rb"(?im)^Content-Type: application/json", head), d.answer
            assert set(json.loads(body)) == {"error"}, d.answer
    assert served >= 10, f"only {served} requests were served while the dribblers ran"
    assert slowest < 2.0, f"a request took {slowest:.2f} s while the dribblers ran"
    assert server.crash_lines() == []
