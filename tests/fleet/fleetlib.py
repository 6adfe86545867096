"""Helpers of tests/fleet: drive a fleet made by fleet/fleet-up (Galera
cluster, Apache nodes with mod_hello, front balancer), send load through
it, and measure what clients see.

- Fleet: the fleet's settings (its fleet.env), fleet/fleetctl, SQL on each
  Galera node, the balancer-manager.
- Client: one keep-alive HTTP/1.1 connection; a request that fails on a
  connection closed before any byte of the answer is retried once (GET and
  PUT are idempotent), anything else is a failure.
- Load: threads sending a GET/PUT mix through the front, recording every
  request, every acknowledged PUT, and every read that did not see the
  thread's own acknowledged write.
- Monitor: polls the balancer-manager and records when members change state.
"""
import html
import http.client
import os
import random
import re
import subprocess
import sys
import threading
import time
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "integration"))
import hellotest as ht  # noqa: E402  (the birthday rule, CRASH_RE)

ENV = {**os.environ, "PATH": "/usr/sbin:/usr/bin:/sbin:/bin:" + os.environ.get("PATH", ""),
       "LC_ALL": "C"}


def letters(i, width):
    """i as `width` letters a..z (usernames are letters only)."""
    s = ""
    for _ in range(width):
        s = chr(ord("a") + i % 26) + s
        i //= 26
    return s


def random_dob(rng):
    return date(rng.randint(1950, 2010), rng.randint(1, 12), rng.randint(1, 28))


def greeting(user, dob):
    return '{"message":"%s"}' % ht.expected_message(user, dob, ht.utc_today())


def percentile(values, p):
    if not values:
        return float("nan")
    v = sorted(values)
    return v[min(len(v) - 1, int(len(v) * p / 100))]


def ms(x):
    return f"{x * 1000:.2f} ms"


# ---- the fleet --------------------------------------------------------------

class Fleet:
    def __init__(self, name, src=REPO, **settings):
        """The fleet `name` of the checkout `src` (its fleet/ scripts, its
        build/mod_hello.so, its state under src/build/fleet/name)."""
        self.name = name
        self.src = Path(src)
        self.settings = {k: str(v) for k, v in settings.items()}
        self.dir = self.src / "build" / "fleet" / name
        self.env = {}

    def script(self, name):
        return str(self.src / "fleet" / name)

    def _env(self):
        return {**ENV, "FLEET_NAME": self.name, **self.settings}

    def up(self, timeout=600):
        proc = subprocess.run([self.script("fleet-up")], env=self._env(), capture_output=True, text=True,
                              timeout=timeout)
        if proc.returncode != 0:
            raise AssertionError(f"fleet/fleet-up failed ({proc.returncode}):\n"
                                 f"{proc.stdout[-3000:]}{proc.stderr[-5000:]}")
        self.load_env()
        return proc

    def load_env(self):
        self.env = {}
        for line in (self.dir / "fleet.env").read_text().splitlines():
            if "=" in line and not line.startswith("#"):
                k, v = line.split("=", 1)
                self.env[k] = v

    def down(self):
        return subprocess.run([self.script("fleet-down"), self.name], env=ENV, capture_output=True,
                              text=True, timeout=300)

    def ctl(self, *args, timeout=300, check=True):
        proc = subprocess.run([self.script("fleetctl"), *map(str, args)], env=self._env(),
                              capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"fleetctl {' '.join(map(str, args))} failed "
                                 f"({proc.returncode}):\n{proc.stdout}{proc.stderr}")
        return proc

    # -- places
    @property
    def web_nodes(self):
        return int(self.env["FLEET_WEB_NODES"])

    @property
    def db_nodes(self):
        return int(self.env["FLEET_DB_NODES"])

    def web_addr(self, n):
        return f"{self.env['FLEET_WEB_NET']}.{n}"

    def web_port(self, sync=True):
        return int(self.env["FLEET_WEB_PORT" if sync else "FLEET_NOSYNC_PORT"])

    def web_db(self, n):
        return (n - 1) % self.db_nodes + 1

    @property
    def front(self):
        return self.env["FLEET_FRONT_ADDR"], int(self.env["FLEET_PORT"])

    def member(self, n):
        return f"http://{self.web_addr(n)}:{self.web_port()}"

    def web_dir(self, n):
        return self.dir / f"web{n}"

    @property
    def db_root(self):
        """Where the Galera nodes' directories are: the fleet's own directory,
        or (as root) a directory under /var/tmp that the mysql user can enter."""
        return Path(self.env.get("FLEET_DB_ROOT") or self.dir)

    def db_dir(self, n):
        return self.db_root / f"galera{n}"

    # -- SQL on one Galera node, as root over its socket
    def sql(self, n, query, database="hello", timeout=30):
        proc = subprocess.run(
            ["mariadb", "--no-defaults", "--protocol=socket",
             f"--socket={self.db_dir(n) / 'mysqld.sock'}", "-uroot", "--connect-timeout=5",
             "-N", "-B", database, "-e", query],
            capture_output=True, text=True, timeout=timeout, env=ENV)
        if proc.returncode != 0:
            raise AssertionError(f"SQL on galera{n} failed: {proc.stderr}")
        return [line.split("\t") for line in proc.stdout.splitlines()]

    def status(self, n, *names):
        """SHOW GLOBAL STATUS values of node n, as a dict of strings."""
        like = " OR ".join(f"Variable_name = '{v}'" for v in names)
        return dict(self.sql(n, f"SHOW GLOBAL STATUS WHERE {like}", database="mysql"))

    def conflicts(self):
        """wsrep_local_cert_failures + wsrep_local_bf_aborts per node."""
        out = {}
        for n in range(1, self.db_nodes + 1):
            s = self.status(n, "wsrep_local_cert_failures", "wsrep_local_bf_aborts")
            out[n] = (int(s["wsrep_local_cert_failures"]), int(s["wsrep_local_bf_aborts"]))
        return out

    def cluster_view(self):
        """{node: (cluster_size, state, ready)} for the nodes that answer."""
        out = {}
        for n in range(1, self.db_nodes + 1):
            try:
                s = self.status(n, "wsrep_cluster_size", "wsrep_local_state_comment",
                                "wsrep_ready")
                out[n] = (int(s["wsrep_cluster_size"]), s["wsrep_local_state_comment"],
                          s["wsrep_ready"])
            except (AssertionError, subprocess.TimeoutExpired, KeyError, ValueError):
                pass
        return out

    def cluster_whole(self):
        view = self.cluster_view()
        return len(view) == self.db_nodes and all(
            size == self.db_nodes and state == "Synced" and ready == "ON"
            for size, state, ready in view.values())

    # -- the balancer as the front sees it
    def members(self, timeout=5):
        """{member URL: (status, busy)} from the balancer-manager."""
        host, port = self.front
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
        try:
            url = f"http://{host}:{port}/balancer-manager"
            conn.request("GET", "/balancer-manager", headers={"Referer": url})
            page = conn.getresponse().read().decode("utf-8", "replace")
        finally:
            conn.close()
        out = {}
        for table in re.findall(r"<table[^>]*>(.*?)</table>", page, re.S):
            rows = re.findall(r"<tr[^>]*>(.*?)</tr>", table, re.S)
            if not rows:
                continue
            head = [re.sub(r"<[^>]+>", "", c).strip()
                    for c in re.findall(r"<th[^>]*>(.*?)</th>", rows[0], re.S)]
            if "Worker URL" not in head or "Status" not in head:
                continue
            for row in rows[1:]:
                cells = [html.unescape(re.sub(r"<[^>]+>", "", c)).strip()
                         for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
                if len(cells) == len(head):
                    d = dict(zip(head, cells))
                    out[d["Worker URL"]] = (d["Status"], int(d.get("Busy", "0") or 0))
        return out


def usable(status):
    return not re.search(r"Dis|Err|HcFl|Stop|Shut", status)


# ---- the client -------------------------------------------------------------

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
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.counter = None
        self.response_class = self._make_response

    def _make_response(self, sock, *args, **kwargs):
        resp = http.client.HTTPResponse(sock, *args, **kwargs)
        resp.fp = self.counter = _CountingFile(resp.fp)
        return resp


# Connection closed (FIN or RST) or a write to a closed one. http.client's
# RemoteDisconnected (no status line) is a ConnectionResetError.
RETRYABLE = (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)


class Result:
    __slots__ = ("t_sent", "t_done", "method", "path", "status", "body", "node", "cache",
                 "retried", "error")

    def __init__(self, t_sent, method, path):
        self.t_sent = t_sent
        self.t_done = None
        self.method = method
        self.path = path
        self.status = None
        self.body = ""
        self.node = None
        self.cache = None  # the Cache-Status header
        self.retried = False
        self.error = None

    @property
    def latency(self):
        return (self.t_done or self.t_sent) - self.t_sent

    @property
    def failed(self):
        return self.status is None or self.status >= 500


class Client:
    """One keep-alive connection to host:port. request() retries once when
    the connection was closed before any byte of the answer arrived."""

    def __init__(self, host, port, timeout=15.0):
        self.host = host
        self.port = port
        self.timeout = timeout
        self.conn = None
        self.connections = 0
        self.retries = 0

    def close(self):
        if self.conn is not None:
            self.conn.close()

    def _once(self, method, path, body):
        if self.conn is None:
            self.conn = _Connection(self.host, self.port, timeout=self.timeout)
        reused = self.conn.sock is not None
        if not reused:
            self.connections += 1
        self.conn.counter = None
        headers = {"Content-Type": "application/json"} if body is not None else {}
        try:
            self.conn.request(method, path, body=body, headers=headers)
            resp = self.conn.getresponse()
            data = resp.read()
            if resp.will_close:
                self.conn.close()
            return (resp.status, data.decode("utf-8", "replace"), resp.getheader("X-Fleet-Node"),
                    resp.getheader("Cache-Status"))
        except Exception as e:  # noqa: BLE001 - recorded, classified below
            e.reused = reused
            e.bytes_received = self.conn.counter.n if self.conn.counter else 0
            self.conn.close()
            raise

    def request(self, method, path, body=None):
        r = Result(time.monotonic(), method, path)
        for attempt in (1, 2):
            try:
                r.status, r.body, r.node, r.cache = self._once(method, path, body)
                break
            except RETRYABLE as e:
                if attempt == 1 and e.bytes_received == 0:
                    r.retried = True
                    self.retries += 1
                    continue
                r.error = f"attempt {attempt}: {e!r} (reused={e.reused}, bytes={e.bytes_received})"
                break
            except Exception as e:  # noqa: BLE001 - a timeout, a refused connection...
                r.error = f"attempt {attempt}: {e!r}"
                break
        r.t_done = time.monotonic()
        return r

    def put(self, user, dob):
        return self.request("PUT", f"/hello/{user}", '{"dateOfBirth":"%s"}' % dob.isoformat())

    def get(self, user):
        return self.request("GET", f"/hello/{user}")


# ---- load through the front ---------------------------------------------------

class LoadThread(threading.Thread):
    """Until stopped: PUT a fresh user (PUT_SHARE of the time) and GET it
    back at once (read-your-writes through the balancer, whichever node
    answers), else GET a seeded user whose date is known. Records every
    request."""

    PUT_SHARE = 0.25

    def __init__(self, index, host, port, seeded, stop, prefix="flt"):
        super().__init__(name=f"load{index}", daemon=True)
        self.client = Client(host, port)
        self.seeded = seeded            # [(user, date)]
        self.stop_event = stop
        self.rng = random.Random(1000 + index)
        self.prefix = f"{prefix}{letters(index, 1)}"
        self.results = []               # Result, in order
        self.acked = []                 # (user, date, t_acked)
        self.stale = []                 # (Result of the GET, expected body)
        self.wrong = []                 # (Result, expected body) for seeded users
        self.unexpected = []            # Results with a status the request cannot get
        self.n_put = 0

    def run(self):
        try:
            while not self.stop_event.is_set():
                if self.rng.random() < self.PUT_SHARE:
                    user = self.prefix + letters(self.n_put, 5)
                    self.n_put += 1
                    dob = random_dob(self.rng)
                    r = self.client.put(user, dob)
                    self.results.append(r)
                    if r.status == 204:
                        self.acked.append((user, dob, r.t_done))
                        g = self.client.get(user)
                        self.results.append(g)
                        expected = greeting(user, dob)
                        if g.status is not None and g.status < 500 and \
                                (g.status, g.body) != (200, expected):
                            self.stale.append((g, expected))
                    elif r.status is not None and r.status < 500:
                        self.unexpected.append(r)
                else:
                    user, dob = self.rng.choice(self.seeded)
                    r = self.client.get(user)
                    self.results.append(r)
                    expected = greeting(user, dob)
                    if r.status is not None and r.status < 500 and \
                            (r.status, r.body) != (200, expected):
                        self.wrong.append((r, expected))
        finally:
            self.client.close()


class Monitor(threading.Thread):
    """Polls the balancer-manager every `interval` seconds; records
    (t, {member: status}) whenever something changed."""

    def __init__(self, fleet, stop, interval=0.1):
        super().__init__(name="monitor", daemon=True)
        self.fleet = fleet
        self.stop_event = stop
        self.interval = interval
        self.changes = []
        self.errors = 0

    def run(self):
        last = None
        while not self.stop_event.is_set():
            try:
                now = {m: s for m, (s, _) in self.fleet.members(timeout=2).items()}
            except Exception:  # noqa: BLE001 - the front is busy; try again
                self.errors += 1
                now = None
            if now is not None and now != last:
                self.changes.append((time.monotonic(), now))
                last = now
            self.stop_event.wait(self.interval)

    def first(self, member, predicate, after):
        """The first recorded time after `after` when member's status
        satisfied predicate (or None)."""
        for t, states in self.changes:
            if t >= after and member in states and predicate(states[member]):
                return t
        # The state may have been reached before `after` and not changed since.
        before = [s for t, s in self.changes if t < after]
        if before and member in before[-1] and predicate(before[-1][member]):
            return after
        return None


# ---- a module build to deploy --------------------------------------------------

def build_module(workdir, tag):
    """The module's sources compiled with apxs in workdir, with a tag string
    of their own so the .so differs from build/mod_hello.so."""
    import shutil
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    for glue in REPO.glob("mod_hello*.[ch]"):   # mod_hello.c, its config file, mod_hello.h
        shutil.copy(glue, workdir)
    shutil.copytree(REPO / "src", workdir / "src", dirs_exist_ok=True)
    shutil.copytree(REPO / "include", workdir / "include", dirs_exist_ok=True)
    (workdir / "build_tag.c").write_text(f'const char hello_build_tag[] = "fleet-test-{tag}";\n')
    sources = [*sorted(p.name for p in workdir.glob("mod_hello*.c")),
               *sorted(str(p.relative_to(workdir)) for p in (workdir / "src").glob("*.c")),
               "build_tag.c"]
    apxs = shutil.which("apxs", path=ENV["PATH"]) or "/usr/bin/apxs"
    proc = subprocess.run([apxs, "-c", "-I", "include", "-o", "mod_hello.la", *sources,
                           "-ljansson"], cwd=workdir, capture_output=True, text=True,
                          timeout=180, env=ENV)
    assert proc.returncode == 0, f"apxs build failed:\n{proc.stdout}{proc.stderr}"
    so = workdir / ".libs" / "mod_hello.so"
    assert so.is_file()
    return so
