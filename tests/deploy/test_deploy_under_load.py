"""Deploys under load: scripts/deploy --server-root on a real httpd and MariaDB
while wrk and a keep-alive Python client keep sending GET and PUT.

Five deploys in a row (good1, good2, broken, good3, good4) onto a server
started with good0. The broken build counts one day too many (a real logic
bug in src/date.c) and must be rolled back by scripts/deploy's round trip.

Failures are counted from the client side:
  (a) wrk (tests/deploy/load.lua): no 5xx (no 4xx either: every request is
      valid); its socket errors (connect/read/write/timeout) are reported;
  (b) the Python client retries an idempotent request once when a reused
      keep-alive connection was closed before any byte of the answer (the
      close Apache does to idle connections at a graceful restart); any
      other failure (a 5xx, an unexpected status, a second failure, a
      timeout) fails the test;
  (c) every PUT the Python client saw acknowledged (204) is in the database
      with its exact date and is greeted right by a GET afterwards.

Run: /usr/bin/python3 -m pytest -q -s tests/deploy   (make test-deploy)
"""
import concurrent.futures
import http.client
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import date
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
import hellotest as ht  # noqa: E402

REPO = ht.REPO
DEPLOY = REPO / "scripts" / "deploy"
TEMPLATE = REPO / "conf" / "httpd-run.conf.in"
LOAD_LUA = Path(__file__).resolve().parent / "load.lua"
APXS = shutil.which("apxs") or "/usr/bin/apxs"
WRK = shutil.which("wrk") or "/usr/bin/wrk"

KEEP = 3                 # scripts/deploy --keep
WRK_USERS = 200          # users wrk reads and writes: wrkaaa ...
WRK_PUT_PERCENT = 20
PY_GET_USERS = 50        # users the Python client reads (dates known): pygetaa ...
PY_THREADS = 3
PY_PUT_SHARE = 0.25      # the rest are GETs
PY_TIMEOUT = 5           # seconds (as deploy's curl -m 5, wrk --timeout 5s); slower fails
WARMUP = 1.5             # seconds of load before the first deploy
DEPLOY_TIMEOUT = 60      # seconds a deploy may take before it is killed
PAUSE = 1.0              # seconds of load between deploys, and after the last

BROKEN_FROM = "return (int)(hello_date_to_days(next) - hello_date_to_days(today));"
BROKEN_TO = "return (int)(hello_date_to_days(next) - hello_date_to_days(today)) + 1;"

ENV = {**os.environ, "PATH": "/usr/sbin:/usr/bin:/sbin:/bin:" + os.environ.get("PATH", ""),
       "LC_ALL": "C"}


def suffix(i, width):
    """i as `width` letters, a..z, most significant first (the names of load.lua)."""
    s = ""
    for _ in range(width):
        s = chr(ord("a") + i % 26) + s
        i //= 26
    return s


def sha16(path):
    out = subprocess.run(["sha256sum", str(path)], capture_output=True, text=True, check=True)
    return out.stdout[:16]


# ---- builds -----------------------------------------------------------------

def build_module(workdir, tag, broken=False):
    """Compiles the module sources with apxs in workdir; returns the .so.
    Every build has its own tag string compiled in, so its content (and
    sha256) differs from the others'. broken: the days-until-birthday count
    is one too many."""
    workdir.mkdir(parents=True)
    for glue in REPO.glob("mod_hello*.[ch]"):   # mod_hello.c, its config file, mod_hello.h
        shutil.copy(glue, workdir)
    shutil.copytree(REPO / "src", workdir / "src")
    shutil.copytree(REPO / "include", workdir / "include")
    (workdir / "build_tag.c").write_text(f'const char hello_build_tag[] = "deploy-test-{tag}";\n')
    if broken:
        date_c = workdir / "src" / "date.c"
        text = date_c.read_text()
        assert text.count(BROKEN_FROM) == 1, "src/date.c changed: update BROKEN_FROM"
        date_c.write_text(text.replace(BROKEN_FROM, BROKEN_TO))
    sources = [*sorted(p.name for p in workdir.glob("mod_hello*.c")),
               *sorted(str(p.relative_to(workdir)) for p in (workdir / "src").glob("*.c")),
               "build_tag.c"]
    proc = subprocess.run([APXS, "-c", "-I", "include", "-o", "mod_hello.la", *sources,
                           "-ljansson"], cwd=workdir, capture_output=True, text=True,
                          timeout=120, env=ENV)
    assert proc.returncode == 0, f"apxs build {tag} failed:\n{proc.stdout}{proc.stderr}"
    so = workdir / ".libs" / "mod_hello.so"
    assert so.is_file(), so
    return so


# ---- the server -------------------------------------------------------------

class Server:
    """httpd from conf/httpd-run.conf.in with its own server root, laid out as
    scripts/deploy --server-root expects: DIR/httpd.conf includes DIR/hello.load,
    versioned builds in DIR/modules."""

    def __init__(self, root, db):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.port = ht.free_port()
        self.conf = self.root / "httpd.conf"
        self.load_file = self.root / "hello.load"
        self.modules = self.root / "modules"
        self.pid_file = self.root / "httpd.pid"
        self.error_log = self.root / "error.log"
        self.access_log = self.root / "access.log"
        self.db = db
        self.pid = None

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def install_initial(self, so):
        """Installs so as the first versioned build, as scripts/deploy would."""
        self.modules.mkdir(exist_ok=True)
        target = self.modules / f"mod_hello-{sha16(so)}.so"
        shutil.copy(so, target)
        os.chmod(target, 0o644)
        self.load_file.write_text(f"LoadModule hello_module {target}\n")
        return target

    def write_config(self):
        text = TEMPLATE.read_text()
        user = "User www-data\nGroup www-data" if os.geteuid() == 0 else ""
        # The module comes from DIR/hello.load, the line scripts/deploy rewrites.
        text, n = re.subn(r'^LoadModule\s+hello_module\s.*$', f'Include "{self.load_file}"',
                          text, flags=re.M)
        assert n == 1, "conf/httpd-run.conf.in: no LoadModule hello_module line"
        if "@DBSOCK@" in text:
            # The children (www-data) cannot reach a socket under pytest's
            # private tmp directory: TCP on 127.0.0.1 instead.
            text, n = re.subn(r"^DBDParams\s.*$", f'DBDParams "{self.db.dbd_params()}"',
                              text, flags=re.M)
            assert n == 1, "conf/httpd-run.conf.in: no DBDParams line"
        for marker, value in (("@RUNDIR@", str(self.root)), ("@PORT@", str(self.port)),
                              ("@SRCDIR@", str(REPO)), ("@DBPORT@", str(self.db.port)),
                              ("@DBPASS@", self.db.password)):
            text = text.replace(marker, value)
        text = re.sub(r"^@USER@$", user, text, flags=re.M)
        left = re.findall(r"^[^#\n]*(@[A-Z]+@)", text, flags=re.M)
        assert not left, f"unfilled markers in conf/httpd-run.conf.in: {left}"
        self.conf.write_text(text)

    def apache2(self, *args):
        return subprocess.run([ht.APACHE2, "-d", str(self.root), "-f", str(self.conf), *args],
                              capture_output=True, text=True, timeout=30, env=ENV)

    def answers(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                s.settimeout(2)
                s.sendall(b"GET /hello-health HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                          b"Connection: close\r\n\r\n")
                return s.recv(16).startswith(b"HTTP/1.1 200")
        except OSError:
            return False

    def start(self):
        self.write_config()
        proc = self.apache2("-t")
        assert proc.returncode == 0, f"apache2 -t:\n{proc.stdout}{proc.stderr}"
        proc = self.apache2("-k", "start")
        assert proc.returncode == 0, f"apache2 -k start:\n{proc.stdout}{proc.stderr}"
        ht.wait_until(lambda: self.pid_file.exists(), 10, what="httpd.pid")
        self.pid = int(self.pid_file.read_text().strip())
        try:
            ht.wait_until(self.answers, 15, what=f"httpd health on port {self.port}")
        except TimeoutError:
            raise AssertionError(f"httpd does not answer:\n{self.error_log_text()[-3000:]}")

    def alive(self):
        if self.pid is None:
            return False
        try:
            stat = Path(f"/proc/{self.pid}/stat").read_text()
        except OSError:
            return False
        return stat.split(")")[-1].split()[0] != "Z"

    def stop(self):
        if not self.alive():
            return
        self.apache2("-k", "stop")
        try:
            ht.wait_until(lambda: not self.alive(), 15, what="httpd to stop")
        except TimeoutError:
            # The parent leads its own process group (it daemonized); its
            # children are in it too.
            try:
                os.killpg(self.pid, signal.SIGKILL)
            except OSError:
                pass

    def loaded_module(self):
        m = re.search(r"^\s*LoadModule\s+hello_module\s+\"?([^\"\s]+)\"?\s*$",
                      self.load_file.read_text(), re.M)
        return Path(m.group(1)) if m else None

    def error_log_text(self):
        try:
            return self.error_log.read_text(errors="replace")
        except OSError:
            return ""


# ---- scripts/deploy ---------------------------------------------------------

class Deploy:
    """One run of scripts/deploy, with the time of each line it logs."""

    def __init__(self, name, server, so):
        self.name = name
        self.so = so
        self.expected_target = server.modules / f"mod_hello-{sha16(so)}.so"
        self.lines = []     # (seconds since start, line)
        self.started = time.monotonic()
        proc = subprocess.Popen([str(DEPLOY), "--server-root", str(server.root),
                                 "--url", server.url, "--keep", str(KEEP), str(so)],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                env=ENV)
        watchdog = threading.Timer(DEPLOY_TIMEOUT, proc.kill)  # its checks give up in 20 s
        watchdog.start()
        try:
            for line in proc.stdout:
                self.lines.append((time.monotonic() - self.started, line.rstrip("\n")))
            self.rc = proc.wait()
        finally:
            watchdog.cancel()
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        self.ended = time.monotonic()
        self.duration = self.ended - self.started

    @property
    def output(self):
        return "\n".join(line for _, line in self.lines)

    def time_of(self, text):
        for t, line in self.lines:
            if text in line:
                return t
        return None

    @property
    def rollback_duration(self):
        """From 'rolling back to' to the end of the run."""
        t = self.time_of("rolling back to")
        return None if t is None else self.duration - t

    def __repr__(self):
        return f"<deploy {self.name} rc={self.rc} {self.duration:.2f}s:\n{self.output}>"


# ---- the Python client ------------------------------------------------------

class _CountingFile:
    """The response's read side; counts the bytes http.client took from it."""

    def __init__(self, f):
        self._f = f
        self.n = 0

    def readline(self, *args):
        data = self._f.readline(*args)
        self.n += len(data)
        return data

    def read(self, *args):
        data = self._f.read(*args)
        self.n += len(data or b"")
        return data

    def readinto(self, b):
        n = self._f.readinto(b)
        self.n += n or 0
        return n

    def __getattr__(self, name):
        return getattr(self._f, name)


class _Connection(http.client.HTTPConnection):
    """Keeps the byte counter of the last response, even when begin() failed."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.counter = None
        self.response_class = self._make_response

    def _make_response(self, sock, *args, **kwargs):
        resp = http.client.HTTPResponse(sock, *args, **kwargs)
        resp.fp = self.counter = _CountingFile(resp.fp)
        return resp


RETRYABLE = (ConnectionResetError, BrokenPipeError)   # RemoteDisconnected is a ConnectionResetError


class PyClient(threading.Thread):
    """GET (known users, checked greeting) and PUT (a fresh user each time)
    over one keep-alive connection, until stopped."""

    def __init__(self, index, port, get_users, stop, seed):
        super().__init__(name=f"pyclient{index}", daemon=True)
        self.index = index
        self.port = port
        self.get_users = get_users      # [(username, date)]
        self.stop_event = stop
        self.rng = random.Random(seed)
        self.conn = None
        self.requests = {"GET": 0, "PUT": 0}
        self.connections = 0
        self.retries = []               # (time, method, exception)
        self.failures = []              # (time, description)
        self.acked = []                 # (username, 'YYYY-MM-DD', t_sent, t_acked)
        self.wrong_greetings = []       # (t_sent, t_answered, username, body)
        self.put_count = 0
        self.latencies = []             # (t_sent, seconds), retries included

    def _send_once(self, method, path, body):
        """One attempt. Returns (status, body) or raises; the exception gets
        .reused and .bytes_received."""
        reused = self.conn is not None and self.conn.sock is not None
        if self.conn is None:
            self.conn = _Connection("127.0.0.1", self.port, timeout=PY_TIMEOUT)
        if self.conn.sock is None:
            self.connections += 1
        self.conn.counter = None
        headers = {"Content-Type": "application/json"} if body is not None else {}
        try:
            self.conn.request(method, path, body=body, headers=headers)
            resp = self.conn.getresponse()
            data = resp.read()
            if resp.will_close:
                self.conn.close()
            return resp.status, data
        except Exception as e:
            e.reused = reused
            e.bytes_received = self.conn.counter.n if self.conn.counter else 0
            self.conn.close()
            raise

    def call(self, method, path, body=None):
        """Returns (status, body, t_sent), or None after recording a failure."""
        t_sent = time.monotonic()
        for attempt in (1, 2):
            try:
                status, data = self._send_once(method, path, body)
            except RETRYABLE as e:
                if attempt == 1 and e.reused and e.bytes_received == 0:
                    self.retries.append((time.monotonic(), method, repr(e)))
                    continue
                self.failures.append((time.monotonic(), f"{method} {path}: attempt {attempt}: "
                                      f"{e!r} (reused={e.reused}, bytes={e.bytes_received})"))
                return None
            except Exception as e:  # a timeout, or anything else
                self.failures.append((time.monotonic(), f"{method} {path}: attempt {attempt}: "
                                      f"{e!r}"))
                return None
            self.latencies.append((t_sent, time.monotonic() - t_sent))
            return status, data, t_sent
        raise AssertionError("unreachable")

    def run(self):
        try:
            while not self.stop_event.is_set():
                if self.rng.random() < PY_PUT_SHARE:
                    self.put()
                else:
                    self.get()
        except Exception as e:  # a bug of the client itself: fail loudly
            self.failures.append((time.monotonic(), f"client crashed: {e!r}"))
        finally:
            if self.conn is not None:
                self.conn.close()

    def put(self):
        user = f"pyput{suffix(self.index, 1)}{suffix(self.put_count, 5)}"
        self.put_count += 1
        dob = f"{self.rng.randint(1950, 2010):04d}-{self.rng.randint(1, 12):02d}-" \
              f"{self.rng.randint(1, 28):02d}"
        self.requests["PUT"] += 1
        r = self.call("PUT", f"/hello/{user}", f'{{"dateOfBirth":"{dob}"}}')
        if r is None:
            return
        status, data, t_sent = r
        if status == 204:
            self.acked.append((user, dob, t_sent, time.monotonic()))
        else:
            self.failures.append((time.monotonic(), f"PUT /hello/{user}: {status} {data[:200]!r}"))

    def get(self):
        user, dob = self.get_users[self.rng.randrange(len(self.get_users))]
        self.requests["GET"] += 1
        r = self.call("GET", f"/hello/{user}")
        if r is None:
            return
        status, data, t_sent = r
        if status != 200:
            self.failures.append((time.monotonic(), f"GET /hello/{user}: {status} {data[:200]!r}"))
            return
        today = ht.utc_today()
        body = data.decode("utf-8", "replace")
        if body == f'{{"message":"{ht.expected_message(user, dob, today)}"}}':
            return
        # The broken build counts one day too many; record it, the test
        # checks that it only answered while its deploy ran.
        n = ht.days_until_birthday(dob, today) + 1
        if body == f'{{"message":"Hello, {user}! Your birthday is in {n} day(s)"}}':
            self.wrong_greetings.append((t_sent, time.monotonic(), user, body))
        else:
            self.failures.append((time.monotonic(), f"GET /hello/{user}: wrong answer {body!r}"))


# ---- wrk ----------------------------------------------------------------------

def parse_wrk(out):
    m = re.search(r"^WRKRESULT (.*)$", out, re.M)
    assert m, f"wrk printed no WRKRESULT line:\n{out}"
    result = {}
    for item in m.group(1).split():
        k, v = item.split("=", 1)
        result[k] = int(v) if re.fullmatch(r"-?\d+", v) else v
    return result


# ---- the test ---------------------------------------------------------------

@pytest.fixture
def cleanup():
    """Callbacks run at the end of the test, in reverse order, whatever happens."""
    callbacks = []
    yield callbacks.append
    errors = []
    for cb in reversed(callbacks):
        try:
            cb()
        except Exception as e:  # keep stopping the rest
            errors.append(repr(e))
    assert not errors, f"cleanup failed: {errors}"


def test_deploy_under_load(tmp_path, cleanup):
    for tool in (APXS, WRK, "curl"):
        assert shutil.which(tool, path=ENV["PATH"]), \
            f"{tool} is missing: scripts/install-deps.sh test"
    t0 = time.monotonic()

    # -- builds: good0 (initial), good1, good2, broken, good3, good4, in parallel
    names = ["good0", "good1", "good2", "broken", "good3", "good4"]
    with concurrent.futures.ThreadPoolExecutor(max_workers=3) as pool:
        futures = {n: pool.submit(build_module, tmp_path / "builds" / n, n, n == "broken")
                   for n in names}
        builds = {n: f.result() for n, f in futures.items()}
    hashes = {n: sha16(so) for n, so in builds.items()}
    assert len(set(hashes.values())) == len(names), f"builds are not distinct: {hashes}"
    t_built = time.monotonic()

    # -- MariaDB, with the users the load reads
    db = ht.MariaDB(tmp_path / "mariadb")
    cleanup(db.stop)
    db.create()
    seed = random.Random(20250615)
    wrk_users = [(f"wrk{suffix(i, 3)}", f"{seed.randint(1950, 2010)}-{seed.randint(1, 12):02d}-"
                  f"{seed.randint(1, 28):02d}") for i in range(WRK_USERS)]
    py_users = [(f"pyget{suffix(i, 2)}", date(seed.randint(1950, 2010), seed.randint(1, 12),
                                                 seed.randint(1, 28)))
                for i in range(PY_GET_USERS)]
    rows = [f"('{u}', '{d}')" for u, d in wrk_users] + \
           [f"('{u}', '{d.isoformat()}')" for u, d in py_users]
    db.sql("INSERT INTO hello_users (username, date_of_birth) VALUES " + ", ".join(rows))

    # -- httpd on good0
    server = Server(tmp_path / "root", db)
    server.install_initial(builds["good0"])
    cleanup(server.stop)
    server.start()

    # -- the load
    wrk_out = tmp_path / "wrk.out"
    wrk_file = open(wrk_out, "w")
    cleanup(wrk_file.close)
    wrk = subprocess.Popen([WRK, "-t2", "-c16", "-d90s", "--timeout", "5s", "-s", str(LOAD_LUA),
                            server.url, "--", str(WRK_USERS), str(WRK_PUT_PERCENT)],
                           stdout=wrk_file, stderr=subprocess.STDOUT, env=ENV)

    def stop_wrk():
        if wrk.poll() is None:
            wrk.kill()
            wrk.wait()
    cleanup(stop_wrk)

    stop = threading.Event()
    clients = [PyClient(i, server.port, py_users, stop, seed=1000 + i) for i in range(PY_THREADS)]

    def stop_clients():
        stop.set()
        for c in clients:
            c.join(timeout=PY_TIMEOUT + 5)
    cleanup(stop_clients)
    for c in clients:
        c.start()
    time.sleep(WARMUP)
    assert wrk.poll() is None, f"wrk exited early:\n{wrk_out.read_text()}"

    # -- five deploys in a row
    deploys = []
    t_load = time.monotonic()
    for name in ["good1", "good2", "broken", "good3", "good4"]:
        before = server.loaded_module()
        d = Deploy(name, server, builds[name])
        d.before = before
        d.after = server.loaded_module()
        d.builds_left = len(list(server.modules.glob("mod_hello-*.so")))
        deploys.append(d)
        time.sleep(PAUSE)
    t_deployed = time.monotonic()

    # -- stop the load: the Python client first, then wrk (SIGINT: it prints
    #    its summary and runs done())
    stop_clients()
    assert all(not c.is_alive() for c in clients), "a Python client did not stop"
    wrk.send_signal(signal.SIGINT)
    try:
        wrk.wait(timeout=15)
    except subprocess.TimeoutExpired:
        stop_wrk()
    t_unloaded = time.monotonic()
    wrk_file.close()
    wrk_text = wrk_out.read_text()
    w = parse_wrk(wrk_text)

    # -- what the clients saw, and what the server and the database hold
    by = {d.name: d for d in deploys}
    broken, good2 = by["broken"], by["good2"]
    final = server.loaded_module()
    builds_left = sorted(p.name for p in server.modules.glob("mod_hello-*.so"))
    log = server.error_log_text()
    crashes = [ln for ln in log.splitlines() if ht.CRASH_RE.search(ln)]
    notable = [ln for ln in log.splitlines()
               if re.search(r"\[[a-z_0-9]+:(warn|error|crit|alert|emerg)\]", ln)]
    access = server.access_log.read_text(errors="replace").splitlines()
    access_5xx = [ln for ln in access if re.search(r'" 5\d\d ', ln)]

    failures = sorted(f for c in clients for f in c.failures)
    retries = sorted(r for c in clients for r in c.retries)
    wrong = sorted(g for c in clients for g in c.wrong_greetings)
    acked = [a for c in clients for a in c.acked]
    during = [a for a in acked if a[3] >= t_load and a[2] <= t_deployed]
    lat = sorted(x for c in clients for x in c.latencies)
    lat_s = sorted(x[1] for x in lat)
    stalls = [t for t, x in lat if x > 0.5]

    stored = dict(db.sql("SELECT username, DATE_FORMAT(date_of_birth, '%Y-%m-%d') "
                         "FROM hello_users WHERE username LIKE 'pyput%'"))
    lost = [(u, dob, stored.get(u)) for u, dob, _, _ in acked if stored.get(u) != dob]
    misread = []
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        today = ht.utc_today()
        for user, dob, _, _ in acked:
            conn.request("GET", f"/hello/{user}")
            resp = conn.getresponse()
            body = resp.read().decode("utf-8", "replace")
            expected = ht.expected_message(user, date.fromisoformat(dob), today)
            if (resp.status, body) != (200, f'{{"message":"{expected}"}}'):
                misread.append(f"GET /hello/{user}: {resp.status} {body}")
            if resp.will_close:
                conn.close()
    finally:
        conn.close()
    t_end = time.monotonic()

    # -- the numbers (printed before the verdict, so a failed run shows them too)
    def when(t):
        return f"+{t - t_load:.2f}s"

    def deploy_line(d):
        s = (f"  {d.name:<7} {hashes[d.name]}  exit {d.rc}  {d.duration:5.2f} s  "
             f"builds in modules/ after: {d.builds_left}")
        if d.rollback_duration is not None:
            s += (f"  (check failed after {d.time_of('the new build failed its checks'):.2f} s, "
                  f"rollback {d.rollback_duration:.2f} s)")
        return s

    retry_kinds = {}
    for _, _, e in retries:
        k = e.split("(")[0]
        retry_kinds[k] = retry_kinds.get(k, 0) + 1
    wrk_s = w["duration_us"] / 1e6
    report = [
        "deploy under load: results",
        f"  builds: 6 apxs builds in {t_built - t0:.1f} s; httpd started on good0 "
        f"{hashes['good0']}",
        f"  deploys (scripts/deploy --server-root, --keep {KEEP}), {PAUSE:.0f} s of load "
        "between them:",
        *[deploy_line(d) for d in deploys],
        f"  deploy window {t_deployed - t_load:.1f} s; "
        f"load ran {t_unloaded - t_load + WARMUP:.1f} s",
        f"  wrk -t2 -c16 ({100 - WRK_PUT_PERCENT}% GET, {WRK_PUT_PERCENT}% PUT): "
        f"{w['requests']} requests in {wrk_s:.1f} s ({w['requests'] / wrk_s:.0f}/s); "
        f"2xx {w['s2xx']}, 4xx {w['s4xx']}, 5xx {w['s5xx']}, non-2xx/3xx {w['status']}",
        f"  wrk socket errors: connect {w['connect']}, read {w['read']}, write {w['write']}, "
        f"timeout {w['timeout']}",
        f"  wrk latency: p50 {w['p50_us'] / 1000:.1f} ms, p99 {w['p99_us'] / 1000:.1f} ms, "
        f"max {w['max_us'] / 1000:.0f} ms",
        f"  python ({PY_THREADS} keep-alive threads): "
        f"{sum(sum(c.requests.values()) for c in clients)} requests "
        f"(GET {sum(c.requests['GET'] for c in clients)}, "
        f"PUT {sum(c.requests['PUT'] for c in clients)}) on "
        f"{sum(c.connections for c in clients)} connections; retries used {len(retries)} "
        f"{retry_kinds or ''}; failures {len(failures)}",
        f"  python latency: p50 {lat_s[len(lat_s) // 2] * 1000:.1f} ms, p99 "
        f"{lat_s[int(len(lat_s) * 0.99)] * 1000:.1f} ms, max {lat_s[-1]:.2f} s; "
        f"{len(stalls)} requests waited over 0.5 s",
        f"  PUTs acknowledged: {len(acked)} ({len(during)} during the deploys); "
        f"not in the database as sent: {len(lost)}; greeted wrong afterwards: {len(misread)}",
        f"  wrong greetings served by the broken build before its rollback: {len(wrong)}",
        f"  access.log: {len(access)} requests, 5xx {len(access_5xx)}; error.log: "
        f"{len(crashes)} crash lines",
        f"  builds left in modules/: {len(builds_left)} (--keep {KEEP}); hello.load -> "
        f"{final.name if final else None}",
        f"  test time {t_end - t0:.1f} s",
        "  deploys from the start of the deploy window: " + ", ".join(
            f"{d.name} {when(d.started)}..{when(d.ended)}" for d in deploys),
    ]
    if retries:
        report.append("  retries at: " + ", ".join(f"{when(t)} {m}" for t, m, _ in retries))
    if stalls:
        report.append("  requests that waited over 0.5 s were sent at: " + ", ".join(
            f"+{x:.1f}s" for x in sorted({round(t - t_load, 1) for t in stalls})))
    if notable:
        report.append("  error.log warnings and errors:\n    " + "\n    ".join(notable[:20]))
    print("\n" + "\n".join(report))

    # -- the verdict
    # The deploys: four went in, the broken one was rolled back to good2 and
    # said why; hello.load ends on good4; no more than --keep builds are left.
    for d in deploys:
        if d.name != "broken":
            assert d.rc == 0, f"{d.name} was not deployed: {d!r}"
            assert d.after == d.expected_target, f"{d.name}: hello.load points at {d.after}"
    assert broken.rc == 1, f"the broken build was not refused with exit status 1: {broken!r}"
    assert broken.time_of("the new build failed its checks") is not None, broken
    # It named the wrong answer: the probe is born today, so the broken count says 1 day.
    assert re.search(r"GET /hello/deployprobe answered: 200 .*Your birthday is in 1 day\(s\)",
                     broken.output), f"the broken deploy did not name the wrong answer: {broken!r}"
    assert broken.time_of(f"rolled back to {good2.expected_target}, which answers"), broken
    assert broken.after == good2.expected_target, \
        f"after the rollback hello.load points at {broken.after}, not good2"
    assert final == by["good4"].expected_target, f"hello.load ends on {final}, not good4"
    assert len(builds_left) <= KEEP, f"more than --keep {KEEP} builds remain: {builds_left}"
    assert final.name in builds_left

    # The server survived: still up, no crashed child, no 5xx.
    assert server.alive(), "httpd is gone"
    assert not crashes, "error.log shows a crashed child:\n" + "\n".join(crashes)
    assert not access_5xx, "access.log has 5xx answers:\n" + "\n".join(access_5xx[:20])

    # (a) wrk: no 5xx, and no 4xx either (every request it sends is valid).
    assert w["requests"] > 0
    assert w["s5xx"] == 0, f"wrk got {w['s5xx']} 5xx answers (first: {w['first_bad']})"
    assert w["s4xx"] == 0 and w["status"] == 0, \
        f"wrk got {w['s4xx']} 4xx answers to valid requests (first: {w['first_bad']})"

    # (b) the Python client: nothing failed beyond the one retry allowed.
    assert not failures, "the Python client failed:\n" + "\n".join(
        f"{when(t)} {what}" for t, what in failures)
    # The broken build's wrong greetings came only while its deploy ran.
    for t_sent, t_answered, user, body in wrong:
        assert t_answered >= broken.started and t_sent <= broken.ended + 0.5, (
            f"a wrong greeting outside the broken deploy ({when(broken.started)} to "
            f"{when(broken.ended)}): {when(t_sent)}..{when(t_answered)} {user}: {body}")

    # (c) every acknowledged PUT is there, exactly.
    assert during, "the Python client saw no PUT acknowledged during the deploys"
    assert not lost, f"{len(lost)} acknowledged PUTs are not in the database as sent " \
                     f"(user, sent, stored): {lost[:10]}"
    assert not misread, f"{len(misread)} acknowledged PUTs read back wrong: {misread[:10]}"
