"""Helpers of the operations and outage tests (test_operations.py,
test_outages.py): servers with the health, metrics and status handlers, a
keep-alive load generator, Prometheus and mod_status parsers, signals to
MariaDB, and the backup/restore scripts.

Everything here starts nothing on import; every process or thread a helper
starts is stopped by the helper itself or by a context manager."""
import http.client as hc
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

import hellotest as ht

GRANTS_DELETE = ht.REPO / "sql" / "grants-delete.sql"
BACKUP = ht.REPO / "scripts" / "backup"
RESTORE = ht.REPO / "scripts" / "restore"

HEALTH = "/hello-health"
METRICS = "/hello-metrics"
STATUS = "/server-status"

# The two handlers of the "Operations" issue, next to the API.
OPS_LOCATIONS = f"""\
<Location {HEALTH}>
    SetHandler hello-health
</Location>
<Location {METRICS}>
    SetHandler hello-metrics
</Location>
"""

# mod_status with the module's lines.
STATUS_CONF = f"""\
LoadModule status_module {ht.MODULES_DIR}/mod_status.so
ExtendedStatus On
<Location {STATUS}>
    SetHandler server-status
</Location>
"""

METHODS = ("GET", "HEAD", "PUT", "DELETE", "OTHER")
CLASSES = ("1xx", "2xx", "3xx", "4xx", "5xx")


def fast_dbd_params(db, group=None):
    """DBDParams as the README recommends them: reconnect=0, and the option
    file group that holds the client's connect-timeout (apr-util 1.6's mysql
    driver takes no timeout of its own)."""
    return (f"host=127.0.0.1 port={db.port} user=hello pass={db.password} dbname=hello "
            f"reconnect=0" + (f" group={group}" if group else ""))


class ClientOptionFile:
    """A MYSQL_HOME directory with my.cnf holding [group] connect-timeout,
    readable by Apache's children (www-data), removed at exit."""

    def __init__(self, group="mod_hello", connect_timeout=2):
        import shutil
        import tempfile
        self._rmtree = shutil.rmtree
        self.group = group
        self.dir = tempfile.mkdtemp(prefix="hello-mysql-home-")
        os.chmod(self.dir, 0o755)
        path = os.path.join(self.dir, "my.cnf")
        with open(path, "w") as f:
            f.write(f"[{group}]\nconnect-timeout={connect_timeout}\n")
        os.chmod(path, 0o644)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._rmtree(self.dir, ignore_errors=True)


# ---- a server on a private copy of the module ------------------------------------

def pin_module(directory, source=None):
    """Copies the module to directory and returns the copy's path. A server
    that loads a private copy cannot be crashed by a rebuild of
    build/mod_hello.so while it runs (the build rewrites the very file the
    children have mapped: they die of SIGSEGV, and so does every child
    forked after that)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    copy = directory / "mod_hello.so"
    shutil.copy2(source or ht.MODULE, copy)
    return copy


class OpsHttpd(ht.Httpd):
    """An Httpd whose LoadModule points at module (a path); set .module and
    restart to switch builds."""

    def __init__(self, root, module, **kwargs):
        self.module = Path(module)
        super().__init__(root, **kwargs)

    def config_text(self):
        text = super().config_text()
        line = f'LoadModule hello_module       "{ht.MODULE}"'
        assert line in text
        return text.replace(line, f'LoadModule hello_module       "{self.module}"')


@pytest.fixture(scope="session")
def pinned_module(tmp_path_factory):
    """build/mod_hello.so as it was when the first test asked for it."""
    return pin_module(tmp_path_factory.mktemp("pinned-module"))


@pytest.fixture
def make_ops_httpd(tmp_path, pinned_module):
    """Like conftest's make_httpd, on the pinned module, with the health and
    metrics handlers (and mod_status when status=True). Every server is
    stopped and its logs checked (no crashed child, no 5xx but 503) at the
    end of the test."""
    servers = []

    def make(start=True, status=False, extra="", module=None, **kwargs):
        extra = OPS_LOCATIONS + (STATUS_CONF if status else "") + extra
        server = OpsHttpd(tmp_path / f"ops-httpd{len(servers)}", module or pinned_module,
                          extra=extra, **kwargs)
        servers.append(server)
        if start:
            server.start()
        return server

    yield make
    for server in servers:
        server.stop()
    for server in servers:
        server.assert_healthy()


# ---- plain HTTP helpers -------------------------------------------------------------

class Answer:
    def __init__(self, status, headers, body, elapsed):
        self.status = status
        self.headers = headers
        self.body = body
        self.elapsed = elapsed

    def header(self, name):
        return self.headers.get(name)

    def __repr__(self):
        return f"<{self.status} {dict(self.headers.items())} {self.body[:300]!r}>"


def plain(server, method, path, body=None, headers=None, timeout=15):
    """One request on its own connection, without the contract check (for
    the health, metrics and status handlers, which openapi.yaml does not
    describe)."""
    conn = hc.HTTPConnection("127.0.0.1", server.port, timeout=timeout)
    started = time.monotonic()
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        return Answer(resp.status, resp.headers, data, time.monotonic() - started)
    finally:
        conn.close()


def curl(url, timeout=10):
    """`curl -sS -i URL`: (status, headers as a dict with lower-case names, body)."""
    proc = subprocess.run(["curl", "-sS", "-i", "--max-time", str(timeout), url],
                          capture_output=True, timeout=timeout + 5)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    head, _, body = proc.stdout.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, body.decode("utf-8")


# ---- Prometheus text ------------------------------------------------------------------

SAMPLE_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{([^}]*)\})? (\S+)$')
LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(?:,|$)')


class Metrics:
    """Samples of one scrape: {(name, ((label, value), ...)): float}."""

    def __init__(self, text):
        self.text = text
        self.samples = {}
        self.types = {}
        for line in text.splitlines():
            if not line:
                continue
            if line.startswith("# TYPE "):
                _, _, name, kind = line.split(" ", 3)
                self.types[name] = kind
                continue
            if line.startswith("#"):
                continue
            m = SAMPLE_RE.match(line)
            assert m, f"not a Prometheus sample line: {line!r}"
            name, labels, value = m.groups()
            pairs = tuple(sorted(LABEL_RE.findall(labels or "")))
            assert (name, pairs) not in self.samples, f"duplicate sample {line!r}"
            self.samples[(name, pairs)] = float(value)

    def series(self, name, **labels):
        """{labels dict as tuple: value} of the samples of name that carry labels."""
        want = set(labels.items())
        return {k[1]: v for k, v in self.samples.items()
                if k[0] == name and want <= set(k[1])}

    def get(self, name, **labels):
        """The sum over the vhosts (and any label not given), as PromQL's sum()."""
        found = self.series(name, **labels)
        assert found, f"no sample {name}{labels} in:\n{self.text}"
        return sum(found.values())

    def vhosts(self):
        """The vhost labels, in the order of the text."""
        out = []
        for (_, labels) in self.samples:
            v = dict(labels).get("vhost")
            if v is not None and v not in out:
                out.append(v)
        return out

    def requests(self):
        """{(method, class): count} of hello_requests_total."""
        out = {}
        for (name, labels), value in self.samples.items():
            if name == "hello_requests_total":
                d = dict(labels)
                key = (d["method"], d["code"])
                out[key] = out.get(key, 0) + value
        return out

    def requests_sum(self):
        return sum(self.requests().values())

    def buckets(self):
        """[(le, cumulative count summed over the vhosts)] in the order of
        the text, +Inf last."""
        out = {}
        for line in self.text.splitlines():
            m = re.match(r'^hello_request_duration_seconds_bucket\{vhost="(?:[^"\\]|\\.)*",'
                         r'le="([^"]+)"\} (\S+)$', line)
            if m:
                out[m.group(1)] = out.get(m.group(1), 0) + float(m.group(2))
        return list(out.items())

    def counters(self):
        """Every sample but the creation time: what must not go down."""
        return {k: v for k, v in self.samples.items() if k[0] != "hello_metrics_created_seconds"}


def scrape(server):
    """The metrics endpoint through curl, checked for its media type."""
    status, headers, body = curl(server.base_url + METRICS)
    assert status == 200, (status, body[:500])
    assert headers.get("content-type", "").startswith("text/plain; version=0.0.4"), headers
    return Metrics(body)


def status_auto(server):
    """/server-status?auto as {key: value}."""
    r = plain(server, "GET", STATUS + "?auto")
    assert r.status == 200, r
    out = {}
    for line in r.body.decode().splitlines():
        key, sep, value = line.partition(": ")
        if sep:
            out[key] = value
    return out


# ---- load -----------------------------------------------------------------------------

class Result:
    __slots__ = ("worker", "seq", "method", "path", "body", "status", "error", "sent", "done",
                 "headers", "answer")

    def __init__(self, worker, seq, method, path, body):
        self.worker = worker
        self.seq = seq
        self.method = method
        self.path = path
        self.body = body
        self.status = None
        self.error = None
        self.sent = None
        self.done = None
        self.headers = None
        self.answer = None

    def __repr__(self):
        return (f"<{self.method} {self.path} -> {self.status or self.error} "
                f"@{self.done - self.sent if self.done else '?'}s>")


class Load:
    """Worker threads, each with one keep-alive connection (http.client),
    sending the requests that plan(worker, seq) returns -- (method, path,
    body bytes or None, headers) or None to stop that worker -- until
    stop(), until plan says so, or until `duration` seconds have passed.
    Every answer is kept (Result) and checked against docs/openapi.yaml;
    a failed check is kept in contract_errors rather than raised.

    Use as a context manager: the threads are stopped and joined on exit,
    whatever happens."""

    def __init__(self, server, plan, threads=4, duration=10.0, timeout=20.0, check=True):
        self.server = server
        self.plan = plan
        self.nthreads = threads
        self.duration = duration
        self.timeout = timeout
        self.check = check
        self.results = []
        self.contract_errors = []
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self.threads = []
        self.started = None

    def __enter__(self):
        self.started = time.monotonic()
        deadline = self.started + self.duration
        for w in range(self.nthreads):
            t = threading.Thread(target=self._run, args=(w, deadline), daemon=True,
                                 name=f"load-{w}")
            self.threads.append(t)
            t.start()
        return self

    def stop(self):
        self._stop.set()
        for t in self.threads:
            t.join(self.timeout + 5)
        alive = [t.name for t in self.threads if t.is_alive()]
        assert not alive, f"load threads still running: {alive}"

    def __exit__(self, *exc):
        self.stop()
        return False

    def wait(self):
        """Waits until every worker has finished its plan (or the duration)."""
        for t in self.threads:
            t.join(self.duration + self.timeout + 5)
        self.stop()

    def _run(self, worker, deadline):
        conn = None
        seq = 0
        try:
            while not self._stop.is_set() and time.monotonic() < deadline:
                req = self.plan(worker, seq)
                if req is None:
                    return
                method, path, body, headers = req
                res = Result(worker, seq, method, path, body)
                seq += 1
                if conn is None:
                    conn = hc.HTTPConnection("127.0.0.1", self.server.port,
                                                      timeout=self.timeout)
                res.sent = time.monotonic()
                try:
                    conn.request(method, path, body=body, headers=headers or {})
                    resp = conn.getresponse()
                    data = resp.read()
                    res.done = time.monotonic()
                    res.status = resp.status
                    res.headers = resp.headers
                    res.answer = data
                    if resp.will_close:
                        conn.close()
                        conn = None
                except (OSError, hc.HTTPException) as e:
                    res.done = time.monotonic()
                    res.error = repr(e)
                    conn.close()
                    conn = None
                with self.lock:
                    self.results.append(res)
                if self.check and res.status is not None:
                    self._check(res)
        finally:
            if conn is not None:
                conn.close()

    def _check(self, res):
        resp = ht.Response(res.method, res.path, res.status, "", res.headers, res.answer, b"",
                           [], res.done - res.sent)
        try:
            self.server.contract.check(resp, list(self.server.locations))
        except AssertionError as e:
            with self.lock:
                self.contract_errors.append(f"{res!r}: {e}")

    # -- summaries

    def statuses(self):
        out = {}
        for r in self.results:
            key = r.status if r.status is not None else "error"
            out[key] = out.get(key, 0) + 1
        return out

    def errors(self):
        return [r for r in self.results if r.error is not None]

    def by_method_class(self):
        """{(metric method, 'Nxx'): count} of the answered requests, as
        hello_requests_total counts them."""
        out = {}
        for r in self.results:
            if r.status is None:
                continue
            method = r.method if r.method in METHODS else "OTHER"
            key = (method, f"{r.status // 100}xx")
            out[key] = out.get(key, 0) + 1
        return out


def letters(n, width):
    """n in base 26 as `width` letters: a fixed-width, letters-only suffix."""
    out = ""
    for _ in range(width):
        n, d = divmod(n, 26)
        out = chr(ord("a") + d) + out
    assert n == 0
    return out


def bulk_names(names, workers, per_worker):
    """workers lists of per_worker unique usernames (one Names.new() as the
    prefix: Names is slow for thousands)."""
    base = names.new(8)
    return [[base + letters(w, 2) + letters(i, 4) for i in range(per_worker)]
            for w in range(workers)]


def json_put(dob):
    return (b'{"dateOfBirth":"%s"}' % dob.encode(), {"Content-Type": "application/json"})


# ---- MariaDB ----------------------------------------------------------------------------

class PrivateTmpMariaDB(ht.MariaDB):
    """A sandbox MariaDB whose temporary files go to DIR/tmp (TMPDIR) instead
    of the shared /tmp: `mariadb-install-db` run next to other MariaDB
    servers on the machine intermittently fails with "Error on delete of
    '/tmp/#sql-temptable-....MAI' (Errcode: 2)"."""

    def _sandbox(self, *args, stdin=None, check=True, timeout=60):
        tmp = self.dir / "tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run([str(ht.SANDBOX), *args], input=stdin, capture_output=True,
                              text=True, timeout=timeout, env={**os.environ, "TMPDIR": str(tmp)})
        if check and proc.returncode != 0:
            raise RuntimeError(f"mariadb-sandbox {' '.join(args)} failed "
                               f"({proc.returncode}):\n{proc.stdout}{proc.stderr}")
        return proc


@pytest.fixture
def private_db(tmp_path):
    """conftest's own_db, on PrivateTmpMariaDB: a MariaDB for one test."""
    server = PrivateTmpMariaDB(tmp_path / "mariadb")
    try:
        server.create()
        yield server
    finally:
        server.stop()


def load_sql_file(db, path, database="hello"):
    """Runs an SQL file as root through the sandbox's `sql` command."""
    db._sandbox("sql", str(db.dir), database, stdin=Path(path).read_text())


def socket_path(db):
    return db.dir / "mysqld.sock"


def root_client_options(db):
    return ["--no-defaults", f"--socket={socket_path(db)}", "-uroot"]


def _process_gone(pid):
    """True once pid has exited (a zombie counts as gone: nobody reaps the
    sandbox's mariadbd, whose parent shell has exited)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state in ("Z", "X")


def kill9(db):
    """SIGKILL to the sandbox's mariadbd; waits until it is gone and removes
    its pid file (the sandbox would otherwise take the zombie for a live
    server, refuse to start, and wait a minute to stop it)."""
    pid = db.pid
    assert pid is not None and db.running(), "MariaDB is not running"
    os.kill(pid, signal.SIGKILL)
    ht.wait_until(lambda: _process_gone(pid), 10, what=f"mariadbd {pid} to die")
    try:
        (db.dir / "mysqld.pid").unlink()
    except FileNotFoundError:
        pass
    return pid


class Frozen:
    """SIGSTOP to mariadbd for the duration of a with block; SIGCONT on exit
    whatever happens (call thaw() to resume earlier)."""

    def __init__(self, db):
        self.db = db
        self.pid = db.pid
        self.frozen = False

    def __enter__(self):
        os.kill(self.pid, signal.SIGSTOP)
        self.frozen = True
        return self

    def thaw(self):
        if self.frozen:
            os.kill(self.pid, signal.SIGCONT)
            self.frozen = False

    def __exit__(self, *exc):
        self.thaw()
        return False


def table_rows(db):
    """{username: 'YYYY-MM-DD'} of hello_users."""
    rows = db.sql("SELECT username, DATE_FORMAT(date_of_birth, '%Y-%m-%d') FROM hello_users")
    return {u: d for u, d in rows}


def wait_for(predicate, timeout, interval=0.02, what="condition"):
    """wait_until that returns the seconds it took."""
    started = time.monotonic()
    ht.wait_until(predicate, timeout, interval=interval, what=what)
    return time.monotonic() - started


def report(name, value):
    """A measured number, printed (pytest -s shows it; the outage tests also
    keep them in the junit properties through record_property)."""
    print(f"[ops-measure] {name}: {value}")
