#!/usr/bin/python3
"""The side-by-side benchmark of mod_hello (see docs/performance.md).

    bench/bench.py [run]     make bench: every scenario, results.md/json
    bench/bench.py memory    make bench-memory: child RSS from 10k to 1M requests
    bench/bench.py profile   make bench-profile: callgrind of httpd -X, per-request costs
    bench/bench.py serve     the same servers, seeded, until Ctrl-C (to look at by hand)
    bench/bench.py report [build/bench/runs-TIME.json]
                             results.md/.json again from a run's raw data (default: the last)

Starts, under build/bench/, a throwaway MariaDB (scripts/mariadb-sandbox, its
durable settings as shipped) seeded with BENCH_USERS users, an Apache with the
built module on the event MPM, and (run only) a second Apache with mod_php on
the prefork MPM serving bench/php/hello.php. Everything it starts is stopped
when it ends, on failure and on Ctrl-C or SIGTERM too.

Settings (environment):
  BENCH_DURATION=10      seconds per wrk run
  BENCH_REPEAT=3         repetitions of each run (the tables show medians)
  BENCH_CONNECTIONS="32 128"
  BENCH_SCENARIOS="static const get put mix get-cached mix-cached" (get-cold runs with the
                         cached ones; const is bench/mod_bench_const.c on mod_hello's Apache)
  BENCH_SERVERS="hello php"
  BENCH_THREADS=2        wrk threads
  BENCH_WARMUP=5         seconds of warm-up per server before measuring
  BENCH_PAUSE=1          seconds of rest between runs
  BENCH_USERS=100000     seeded users
  BENCH_PUT_PERCENT=10   share of PUTs in the mix
  BENCH_OUTDIR=bench     where results.md/.json (memory.md/.json, profile.md) go
  BENCH_MODULE=build/mod_hello.so   the module the mod_hello Apache loads (to compare builds)
  BENCH_HELLO_CHILDREN=2 BENCH_HELLO_THREADS=128 BENCH_DBDMAX=64 BENCH_PHP_WORKERS=160
  BENCH_LOGLEVEL=warn    both Apaches' LogLevel (e.g. "warn mpm_event:debug")
  BENCH_HELLO_CONF, BENCH_PHP_CONF   lines appended to either Apache's config
                         (experiments only; empty for the published numbers)
  BENCH_MEMORY_REQUESTS=1000000  BENCH_MEMORY_CHECKPOINTS="10000 100000 500000 1000000"
  BENCH_MEMORY_CONNECTIONS=32
  BENCH_PROFILE_REQUESTS=3000 BENCH_PROFILE_WARMUP=300 BENCH_PROFILE_SCENARIOS="static get put"
  BENCH_PROFILE_PERF=1 BENCH_PROFILE_PERF_SECONDS=5
"""
import hashlib
import http.client
import json
import os
import random
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time

BENCH = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH)
RUN = os.path.join(ROOT, "build", "bench")
SANDBOX = os.path.join(ROOT, "scripts", "mariadb-sandbox")
MODULE = os.path.abspath(os.environ.get("BENCH_MODULE") or os.path.join(ROOT, "build", "mod_hello.so"))
CONST_MODULE = os.path.join(ROOT, "build", "mod_bench_const.so")
LUA = os.path.join(BENCH, "wrk", "bench.lua")
DBPASS = "benchpass"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")

SERVER_NAMES = {"hello": "mod_hello", "php": "php", "cached": "mod_hello+cache"}
SERVER_KEYS = {v: k for k, v in SERVER_NAMES.items()}


def env_int(name, default):
    return int(os.environ.get(name, default))


def env_list(name, default):
    return os.environ.get(name, default).split()


def log(*args):
    print(*args, flush=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def loadavg():
    with open("/proc/loadavg") as f:
        return [float(x) for x in f.read().split()[:3]]


def cpu_ticks_of(pid):
    """utime + stime of one process (all its threads), in clock ticks."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None


def children_of(pid):
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                out.append(int(d))
        except (FileNotFoundError, ProcessLookupError, IndexError):
            pass
    return sorted(out)


def machine_ticks():
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + v[4]
    total = sum(v[:8])
    return total - idle, total


def proc_status(pid):
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("VmRSS", "VmHWM", "RssAnon", "RssFile", "VmSize", "Threads"):
                    out[k] = int(v.split()[0])
    except FileNotFoundError:
        pass
    return out


class Failure(Exception):
    pass


# ---------------------------------------------------------------- the pieces


class MariaDB:
    def __init__(self, dir):
        self.dir = dir
        self.port = None
        self.started = False

    def client(self, sql, db="hello"):
        r = subprocess.run([SANDBOX, "sql", self.dir, "-N", "-B", db], input=sql,
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise Failure(f"SQL failed: {sql[:200]}\n{r.stderr}")
        return r.stdout

    def start(self, users):
        # A fresh data directory each time: the same 100,000 rows every run.
        subprocess.run([SANDBOX, "stop", self.dir], check=False)
        shutil.rmtree(self.dir, ignore_errors=True)
        self.port = free_port()
        subprocess.run([SANDBOX, "init", self.dir], check=True)
        self.started = True
        subprocess.run([SANDBOX, "start", self.dir, str(self.port)], check=True)
        subprocess.run([SANDBOX, "setup", self.dir, DBPASS], check=True)
        t = time.time()
        # One INSERT ... SELECT over MariaDB's built-in sequence table: user i
        # is "user" + i in base 26 on four letters (bench/wrk/bench.lua makes
        # the same names); dates spread over 1940..2013, all valid.
        self.client(
            "INSERT INTO hello_users (username, date_of_birth) SELECT "
            "CONCAT('user', CHAR(97 + seq DIV 17576 MOD 26), CHAR(97 + seq DIV 676 MOD 26), "
            "CHAR(97 + seq DIV 26 MOD 26), CHAR(97 + seq MOD 26)), "
            "DATE '1940-01-01' + INTERVAL (seq * 7919) MOD 27000 DAY "
            f"FROM seq_0_to_{users - 1};")
        n = int(self.client("SELECT COUNT(*) FROM hello_users;").strip())
        if n != users:
            raise Failure(f"seeded {n} users, wanted {users}")
        log(f"bench: MariaDB on 127.0.0.1:{self.port}, {n} users seeded in "
            f"{time.time() - t:.1f} s (innodb_flush_log_at_trx_commit="
            f"{self.client('SELECT @@innodb_flush_log_at_trx_commit;').strip()})")

    def pid(self):
        try:
            with open(os.path.join(self.dir, "mysqld.pid")) as f:
                return int(f.read().strip())
        except (FileNotFoundError, ValueError):
            return None

    def cpu_ticks(self):
        pid = self.pid()
        return cpu_ticks_of(pid) if pid else 0

    def status(self):
        out = {}
        for line in self.client("SHOW GLOBAL STATUS;", db="").splitlines():
            k, _, v = line.partition("\t")
            try:
                out[k] = int(v)
            except ValueError:
                pass
        return out

    def stop(self):
        if self.started:
            subprocess.run([SANDBOX, "stop", self.dir], check=False)
            self.started = False


class Apache:
    def __init__(self, name, template, subst):
        self.name = name
        self.dir = os.path.join(RUN, name)
        self.conf = os.path.join(self.dir, "httpd.conf")
        self.template = template
        self.subst = subst
        self.port = None
        self.ppid = None
        self.proc = None

    def write_conf(self, extra_subst=None):
        shutil.rmtree(self.dir, ignore_errors=True)   # last run's logs too
        os.makedirs(self.dir)
        with open(self.template) as f:
            text = f.read()
        subst = dict(self.subst)
        subst.update(extra_subst or {})
        subst["RUNDIR"] = self.dir
        subst["PORT"] = str(self.port)
        user = "User www-data\nGroup www-data" if os.geteuid() == 0 else ""
        text = text.replace("@USER@", subst.pop("USER_LINES", user))
        for k, v in subst.items():
            text = text.replace(f"@{k}@", str(v))
        left = re.findall(r"@[A-Z_]+@", text)
        if left:
            raise Failure(f"{self.template}: unfilled markers {left}")
        with open(self.conf, "w") as f:
            f.write(text)
        r = subprocess.run(["apache2", "-d", self.dir, "-f", self.conf, "-t"],
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise Failure(f"{self.name}: apache2 -t refused {self.conf}:\n{r.stderr}")

    def start(self, extra_subst=None):
        self.port = free_port()
        self.write_conf(extra_subst)
        # Foreground (-DFOREGROUND) as our child: its pid is known at once and
        # it cannot outlive us unnoticed.
        self.proc = subprocess.Popen(["apache2", "-d", self.dir, "-f", self.conf,
                                      "-DFOREGROUND"], start_new_session=True)
        self.ppid = self.proc.pid
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise Failure(f"{self.name}: httpd exited at start; see {self.dir}/error.log")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.1)
        raise Failure(f"{self.name}: httpd did not answer on {self.port}")

    def pids(self):
        return [self.ppid] + children_of(self.ppid) if self.ppid else []

    def cpu(self):
        return {pid: cpu_ticks_of(pid) for pid in self.pids()}

    def stop(self, timeout=15):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                # Only our own processes: the parent and its children.
                for pid in children_of(self.ppid) + [self.ppid]:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                self.proc.wait()
        self.proc = None

    def url(self):
        return f"http://127.0.0.1:{self.port}"


def cpu_delta(before, after):
    """Ticks used between two snapshots by the processes present in both,
    plus the whole life of any process that appeared in between."""
    total = 0
    for pid, a in after.items():
        if a is None:
            continue
        b = before.get(pid)
        total += a - (b or 0) if b is not None else a
    return total


def http_req(port, method, path, body=None, headers=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, dict((k.lower(), v) for k, v in r.getheaders()), data


def username(i):
    s = ""
    for _ in range(4):
        s = chr(97 + i % 26) + s
        i //= 26
    return "user" + s


# ---------------------------------------------------------------- wrk


WRK_CHILDREN = []


def run_wrk(url, mode, conns, duration, threads, users, put_percent, stop_after=0,
            static_path="/static.json", seed=0):
    """One wrk run. With stop_after, each thread stops after that many
    responses and wrk is ended as soon as all have (see bench.lua)."""
    mark = ""
    if stop_after:
        mark = os.path.join(RUN, f"wrk-stop-{os.getpid()}-{time.time_ns()}")
    cmd = ["wrk", f"-t{threads}", f"-c{conns}", f"-d{duration}s", "--timeout", "10s",
           "-s", LUA, url, "--", mode, str(users), str(put_percent), str(stop_after),
           static_path, mark, str(seed), str(threads)]
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    WRK_CHILDREN.append(p)
    if stop_after:
        marks = [f"{mark}.{i}" for i in range(1, threads + 1)]
        while p.poll() is None and not all(os.path.exists(m) for m in marks):
            time.sleep(0.05)
        if p.poll() is None:
            p.send_signal(signal.SIGINT)
        for m in marks:
            if os.path.exists(m):
                os.unlink(m)
    out, _ = p.communicate()
    WRK_CHILDREN.remove(p)
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    m = re.search(r"^BENCHRESULT (.*)$", out, re.M)
    if p.returncode != 0 or not m:
        raise Failure(f"wrk failed ({p.returncode}): {' '.join(cmd)}\n{out}")
    res = {}
    for kv in m.group(1).split():
        k, _, v = kv.partition("=")
        try:
            res[k] = float(v) if "." in v else int(v)
        except ValueError:
            res[k] = v
    nm = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    res["wrk_non2xx"] = int(nm.group(1)) if nm else 0
    sm = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    res["socket_errors"] = sum(int(x) for x in sm.groups()) if sm else 0
    res["rps"] = res["requests"] / (res["duration_us"] / 1e6)
    res["non_2xx"] = res["s3xx"] + res["s4xx"] + res["s5xx"] + res["sother"]
    res["wrk_cpu_ticks"] = ((ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)) \
        * CLK_TCK
    res["raw"] = out
    return res


# ---------------------------------------------------------------- environment


class Bench:
    def __init__(self):
        self.db = MariaDB(os.path.join(RUN, "mariadb"))
        self.servers = {}
        self.www = os.path.join(RUN, "www")
        self.users = env_int("BENCH_USERS", 100000)
        self.duration = env_int("BENCH_DURATION", 10)
        self.outdir = os.path.abspath(os.path.join(ROOT, os.environ.get("BENCH_OUTDIR", "bench")))

    def check_prereqs(self, php=True):
        missing = []
        if not os.path.exists(MODULE):
            missing.append(f"{MODULE} (run: make module)")
        if not os.path.exists(CONST_MODULE):
            missing.append(f"{CONST_MODULE} (run: make bench-const)")
        for tool in ["wrk", "apache2", "mariadbd", "curl"]:
            if shutil.which(tool) is None:
                missing.append(tool)
        if php and not os.path.exists("/usr/lib/apache2/modules/libphp8.2.so"):
            missing.append("libapache2-mod-php (php8.2)")
        if missing:
            raise Failure("missing: " + ", ".join(missing) +
                          " -- run scripts/install-deps.sh bench")

    def start(self, servers, keepalive, hello_extra=None):
        os.makedirs(RUN, exist_ok=True)
        # Apache's children (www-data) read these.
        os.chmod(RUN, 0o755)
        os.makedirs(self.www, exist_ok=True)
        self.db.start(self.users)
        children = env_int("BENCH_HELLO_CHILDREN", 2)
        threads = env_int("BENCH_HELLO_THREADS", 128)
        common = {"DBPORT": self.db.port, "DBPASS": DBPASS, "WWW": self.www,
                  "SRCDIR": ROOT, "KEEPALIVE": keepalive,
                  "LOGLEVEL": os.environ.get("BENCH_LOGLEVEL", "warn")}
        if "hello" in servers:
            subst = dict(common, MODULE=MODULE, CONSTMODULE=CONST_MODULE,
                         CHILDREN=children, THREADS=threads,
                         WORKERS=children * threads, DBDMAX=env_int("BENCH_DBDMAX", 64))
            subst["EXTRA"] = os.environ.get("BENCH_HELLO_CONF", "")
            subst.update(hello_extra or {})
            self.servers["hello"] = Apache("hello", os.path.join(BENCH, "conf",
                                                                 "httpd-hello.conf.in"), subst)
        if "cached" in servers:
            # The same Apache and module, with the read cache on: every
            # seeded user fits, and entries outlive the whole run, so that
            # get-cached measures hits (docs/performance.md, "The read cache").
            subst = dict(self.servers["hello"].subst)
            rundir = os.path.join(RUN, "cached")
            subst["EXTRA"] += (
                "\nLoadModule socache_shmcb_module /usr/lib/apache2/modules/mod_socache_shmcb.so"
                f"\nHelloCache \"shmcb:{rundir}/hello_cache("
                f"{env_int('BENCH_CACHE_BYTES', 64 * 1024 * 1024)})\"\n"
                "HelloCacheMaxAge 86400\n")
            self.servers["cached"] = Apache("cached", os.path.join(BENCH, "conf",
                                                                   "httpd-hello.conf.in"), subst)
        if "php" in servers:
            subst = dict(common, PHPDIR=os.path.join(BENCH, "php"),
                         WORKERS=env_int("BENCH_PHP_WORKERS", 160),
                         EXTRA=os.environ.get("BENCH_PHP_CONF", ""))
            self.servers["php"] = Apache("php", os.path.join(BENCH, "conf",
                                                             "httpd-php.conf.in"), subst)
        for s in self.servers.values():
            s.start()
            log(f"bench: {SERVER_NAMES[s.name]} on {s.url()} "
                f"({len(s.pids()) - 1} children; {s.conf})")

    def write_static(self):
        """The static file: a real GET answer, of the most common length."""
        port = self.servers["hello"].port
        bodies = {}
        lengths = []
        for i in range(0, self.users, max(1, self.users // 200)):
            st, _, body = http_req(port, "GET", f"/hello/{username(i)}")
            if st != 200:
                raise Failure(f"GET /hello/{username(i)} answered {st}: {body!r}")
            bodies[len(body)] = body
            lengths.append(len(body))
        typical = statistics.mode(lengths)
        path = os.path.join(self.www, "static.json")
        with open(path, "wb") as f:
            f.write(bodies[typical])
        os.chmod(path, 0o644)
        self.static_size = typical
        # The constant-answer handler reads the same bytes when its Apache
        # starts: start it again now that the file exists.
        s = self.servers["hello"]
        s.stop()
        s.start()
        st, _, body = http_req(s.port, "GET", "/const")
        if st != 200 or body != bodies[typical]:
            raise Failure(f"GET /const answered {st} {body!r}, not the static file's bytes")
        log(f"bench: static.json is {typical} bytes, a real GET answer "
            f"({bodies[typical].decode()}); {len(lengths)} GET answers measured: "
            f"{min(lengths)}..{max(lengths)} bytes, most often {typical}")

    def stop(self):
        # Cleanup runs to its end: a second Ctrl-C or SIGTERM waits.
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        for p in list(WRK_CHILDREN):
            if p.poll() is None:
                p.kill()
        for s in self.servers.values():
            s.stop()
        self.db.stop()


# ---------------------------------------------------------------- preflight


def contract_check(bench):
    """The PHP peer answers as mod_hello does: same statuses, same bodies."""
    cases = [
        ("PUT", "/hello/benchalice", b'{"dateOfBirth":"2000-01-31"}',
         {"Content-Type": "application/json"}, 204),
        ("GET", "/hello/benchalice", None, {}, 200),
        ("HEAD", "/hello/benchalice", None, {}, 200),
        ("GET", f"/hello/{username(0)}", None, {}, 200),
        ("GET", f"/hello/{username(bench.users - 1)}", None, {}, 200),
        ("GET", "/hello/%75seraaab", None, {}, 200),
        ("GET", "/hello/nobodyatall", None, {}, 404),
        ("GET", "/hello/", None, {}, 404),
        ("GET", "/hello/a/b", None, {}, 404),
        ("GET", "/hello/al1ce", None, {}, 400),
        ("DELETE", "/hello/benchalice", None, {}, 405),
        ("PUT", "/hello/benchalice", b'{"dateOfBirth":"2999-01-01"}',
         {"Content-Type": "application/json"}, 400),
        ("PUT", "/hello/benchalice", b'{"dateOfBirth":"2001-02-29"}',
         {"Content-Type": "application/json"}, 400),
        ("PUT", "/hello/benchalice", b'{"dateOfBirth":19900616}',
         {"Content-Type": "application/json"}, 400),
        ("PUT", "/hello/benchalice", b'["1990-06-16"]', {"Content-Type": "application/json"}, 400),
        ("PUT", "/hello/benchalice", b'{"dateOfBirth":"1990-06-16"}',
         {"Content-Type": "text/plain"}, 415),
        ("PUT", "/hello/benchalice", b" " * 5000, {"Content-Type": "application/json"}, 413),
    ]
    answers = {}
    for name, s in bench.servers.items():
        for method, path, body, hdrs, want in cases:
            st, h, data = http_req(s.port, method, path, body, hdrs)
            if st != want:
                raise Failure(f"{SERVER_NAMES[name]}: {method} {path} answered {st}, "
                              f"wanted {want}: {data!r}")
            if st != 204 and method != "HEAD" and \
                    not h.get("content-type", "").startswith("application/json"):
                raise Failure(f"{SERVER_NAMES[name]}: {method} {path}: Content-Type "
                              f"{h.get('content-type')}")
            if st == 405 and h.get("allow") != "GET, HEAD, PUT":
                raise Failure(f"{SERVER_NAMES[name]}: 405 without Allow: GET, HEAD, PUT")
            answers.setdefault((method, path, body), {})[name] = data
    if len(bench.servers) > 1:
        for key, by in answers.items():
            if len(set(by.values())) != 1:
                raise Failure(f"answers differ for {key[0]} {key[1]}: {by}")
        # And the greeting of random seeded users, byte for byte.
        rnd = random.Random(1)
        for _ in range(50):
            path = f"/hello/{username(rnd.randrange(bench.users))}"
            got = {n: http_req(s.port, "GET", path)[2] for n, s in bench.servers.items()}
            if len(set(got.values())) != 1:
                raise Failure(f"GET {path} differs: {got}")
    log(f"bench: contract check passed on {', '.join(SERVER_NAMES[n] for n in bench.servers)} "
        f"({len(cases)} cases{' + 50 greetings compared byte for byte' if len(bench.servers) > 1 else ''})")


# ---------------------------------------------------------------- make bench


def only_on_hello(scenario):
    """Scenarios with no PHP counterpart: the cached ones and const."""
    return scenario.endswith("-cached") or scenario == "const"


def measured_run(bench, server, scenario, conns, duration, threads, put_percent, stop_after=0):
    """One run; "get-cached" and "mix-cached" are get and mix on the Apache
    with the cache, "get-cold" each user once (seq) on its empty cache,
    "const" the constant-answer handler on mod_hello's Apache."""
    s = bench.servers["cached" if scenario.endswith(("-cached", "-cold")) else server]
    mode = {"get-cold": "seq", "const": "static"}.get(scenario, scenario.split("-")[0])
    ld = loadavg()
    st0 = bench.db.status()
    db0 = bench.db.cpu_ticks()
    h0 = s.cpu()
    m0 = machine_ticks()
    res = run_wrk(s.url(), mode, conns, duration, threads, bench.users, put_percent,
                  stop_after=stop_after,
                  static_path="/const" if scenario == "const" else "/static.json")
    m1 = machine_ticks()
    h1 = s.cpu()
    db1 = bench.db.cpu_ticks()
    st1 = bench.db.status()
    res["httpd_ticks"] = cpu_delta(h0, h1)
    res["db_ticks"] = db1 - db0
    busy = m1[0] - m0[0]
    total = m1[1] - m0[1]
    ours = res["httpd_ticks"] + res["db_ticks"] + res["wrk_cpu_ticks"]
    # Whatever else ran on the machine meanwhile (other test suites), as a
    # share of the machine's capacity.
    res["foreign_cpu_pct"] = max(0.0, (busy - ours) / total * 100) if total else 0.0
    res["machine_busy_pct"] = busy / total * 100 if total else 0.0
    res["status_delta"] = {k: st1[k] - st0.get(k, 0) for k in st1
                           if isinstance(st1[k], int) and st1[k] != st0.get(k, 0)}
    res["loadavg"] = ld
    return res


STATUS_KEYS = ["Questions", "Com_stmt_execute", "Com_stmt_prepare", "Com_stmt_close",
               "Com_stmt_reset", "Com_stmt_fetch", "Com_select", "Com_insert", "Com_update",
               "Com_admin_commands", "Com_set_option", "Com_show_status", "Connections",
               "Handler_read_key", "Handler_write", "Handler_update", "Innodb_os_log_fsyncs",
               "Innodb_data_fsyncs", "Bytes_received", "Bytes_sent"]


def refill(bench, threads):
    """Every seeded user read once on the cached Apache, not measured: the
    entries that writes took out are filled again."""
    t0 = time.time()
    r = run_wrk(bench.servers["cached"].url(), "seq", 32, 600, threads, bench.users, 0,
                stop_after=bench.users // threads)
    log(f"bench: cache refilled, {r['requests']} users read in {time.time() - t0:.1f} s, "
        f"non-2xx {r['non_2xx']}")


def probe_overhead(db):
    """What one SHOW GLOBAL STATUS (its client's connection included) adds to
    the counters, so that it can be taken out of the deltas."""
    a = db.status()
    b = db.status()
    return {k: b[k] - a.get(k, 0) for k in STATUS_KEYS if k in b}


def cmd_run():
    b = Bench()
    duration = b.duration
    repeat = env_int("BENCH_REPEAT", 3)
    conns_list = [int(c) for c in env_list("BENCH_CONNECTIONS", "32 128")]
    scenarios = env_list("BENCH_SCENARIOS", "static const get put mix get-cached mix-cached")
    servers = env_list("BENCH_SERVERS", "hello php")
    threads = env_int("BENCH_THREADS", 2)
    warmup = env_int("BENCH_WARMUP", 5)
    pause = float(os.environ.get("BENCH_PAUSE", "1"))
    put_percent = env_int("BENCH_PUT_PERCENT", 10)
    if "hello" not in servers:
        raise Failure("BENCH_SERVERS must include hello (the static file is made from it)")
    b.check_prereqs(php="php" in servers)
    cached = [sc for sc in scenarios if sc.endswith("-cached")]
    started = time.time()
    info = {
        "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "stamp": time.strftime("%Y%m%d-%H%M%S"),
        "commit": git_commit(),
        "loadavg_before": loadavg(),
        "nproc": os.cpu_count(),
        "duration_s": duration, "repeat": repeat, "connections": conns_list,
        "wrk_threads": threads, "users": b.users, "put_percent": put_percent,
        "extra_conf": {k: os.environ[k] for k in ("BENCH_HELLO_CONF", "BENCH_PHP_CONF")
                       if os.environ.get(k)},
    }
    log(f"bench: load average before: {info['loadavg_before']}")
    try:
        b.start(servers + (["cached"] if cached else []), keepalive=max(60, duration + 30))
        b.write_static()
        info["static_bytes"] = b.static_size
        contract_check(b)
        overhead = probe_overhead(b.db)
        info["status_probe_overhead"] = overhead
        runs = []
        if cached:
            # The cold run: every seeded user read once, from the empty
            # cache; it leaves every user cached for the runs below.
            cold = measured_run(b, "hello", "get-cold", 32, 600, threads, 0,
                                stop_after=b.users // threads)
            cold.update(server="hello", scenario="get-cold", connections=32, rep=0)
            runs.append(cold)
            log(f"bench: cold run, {cold['requests']} users read once from an empty cache: "
                f"{cold['rps']:.0f} req/s, non-2xx {cold['non_2xx']}, "
                f"socket errors {cold['socket_errors']}")
        for name in servers + (["cached"] if cached else []):
            for c in sorted(set(conns_list)):
                log(f"bench: warm-up {SERVER_NAMES[name]} mix c={c} {warmup}s")
                w = run_wrk(b.servers[name].url(), "mix", c, warmup, threads, b.users,
                            put_percent)
                if w["non_2xx"] or w["socket_errors"]:
                    log(f"bench: warm-up saw errors: non-2xx {w['non_2xx']} "
                        f"socket {w['socket_errors']} first {w.get('first_bad')}")
        total = repeat * len(conns_list) * sum(
            1 if only_on_hello(sc) else len(servers) for sc in scenarios)
        n = 0
        # Writes on the cached Apache (its mix warm-up, mix-cached) take
        # their users' entries out; get-cached is to measure hits, so the
        # entries are filled again before it (not measured).
        cache_written = bool(cached)
        for rep in range(repeat):
            for conns in conns_list:
                for scenario in scenarios:
                    for name in servers:
                        if only_on_hello(scenario) and name != "hello":
                            continue
                        n += 1
                        if scenario == "get-cached" and cache_written:
                            refill(b, threads)
                            cache_written = False
                        cache_written |= scenario == "mix-cached"
                        time.sleep(pause)
                        r = measured_run(b, name, scenario, conns, duration, threads,
                                         put_percent)
                        r.update(server=name, scenario=scenario, connections=conns, rep=rep)
                        runs.append(r)
                        log(f"[{n:3d}/{total}] {scenario:6s} c={conns:<3d} "
                            f"{SERVER_NAMES[name]:9s} {r['rps']:9.0f} req/s  "
                            f"p50 {r['p50_us'] / 1000:6.2f} ms  p99 {r['p99_us'] / 1000:7.2f} ms  "
                            f"non-2xx {r['non_2xx']} (wrk {r['wrk_non2xx']})  "
                            f"socket errors {r['socket_errors']}  "
                            f"httpd {r['httpd_ticks'] / CLK_TCK * 1e6 / max(1, r['requests']):6.1f} "
                            f"µs/req  db {r['db_ticks'] / CLK_TCK * 1e6 / max(1, r['requests']):6.1f}"
                            f" µs/req  other load {r['foreign_cpu_pct']:4.1f}%  "
                            f"load {r['loadavg'][0]:.2f}")
                        if r["non_2xx"]:
                            log(f"        first non-2xx: {r['first_bad']}")
        info["loadavg_after"] = loadavg()
        info["elapsed_s"] = round(time.time() - started)
        rows, dbstats = summarize(runs, overhead, scenarios + (["get-cold"] if cached else []),
                                  conns_list, servers)
        write_results(b, rows, dbstats, info, runs)
    finally:
        b.stop()
        log("bench: stopped httpd and MariaDB")


def git_commit():
    """The checkout's commit, and which build of the module was measured."""
    r = subprocess.run(["git", "-C", ROOT, "describe", "--always", "--dirty"],
                       capture_output=True, text=True)
    try:
        with open(MODULE, "rb") as f:
            so = hashlib.sha256(f.read()).hexdigest()[:12]
        built = time.strftime("%Y-%m-%d %H:%M", time.gmtime(os.path.getmtime(MODULE)))
    except OSError:
        so, built = "missing", "-"
    name = os.path.relpath(MODULE, ROOT) if os.environ.get("BENCH_MODULE") else "mod_hello.so"
    return f"{r.stdout.strip() or 'unknown'}, {name} sha256 {so}… built {built} UTC"


def med(xs):
    return statistics.median(xs) if xs else None


def summarize(runs, overhead, scenarios, conns_list, servers):
    rows = []
    by = {}
    for r in runs:
        by.setdefault((r["server"], r["scenario"], r["connections"]), []).append(r)
    for conns in conns_list:
        for scenario in scenarios:
            for name in servers:
                rs = by.get((name, scenario, conns))
                if not rs:
                    continue
                reqs = sum(r["requests"] for r in rs)
                row = {
                    "scenario": scenario,
                    "connections": conns,
                    "server": SERVER_NAMES[name],
                    "rps": round(med([r["rps"] for r in rs]), 1),
                    "p50_ms": round(med([r["p50_us"] for r in rs]) / 1000, 3),
                    "p99_ms": round(med([r["p99_us"] for r in rs]) / 1000, 3),
                    "errors": sum(r["non_2xx"] + r["socket_errors"] for r in rs),
                    "ratio_to_static": None,
                    "ratio_to_php": None,
                    "repetitions": len(rs),
                    "rps_runs": [round(r["rps"], 1) for r in rs],
                    "p99_ms_runs": [round(r["p99_us"] / 1000, 3) for r in rs],
                    "non_2xx": sum(r["non_2xx"] for r in rs),
                    "wrk_non_2xx": sum(r["wrk_non2xx"] for r in rs),
                    "socket_errors": sum(r["socket_errors"] for r in rs),
                    "requests": reqs,
                    "httpd_cpu_us_per_req": round(sum(r["httpd_ticks"] for r in rs) / CLK_TCK
                                                  * 1e6 / max(1, reqs), 1),
                    "mariadb_cpu_us_per_req": round(sum(r["db_ticks"] for r in rs) / CLK_TCK
                                                    * 1e6 / max(1, reqs), 1),
                    "wrk_cpu_us_per_req": round(sum(r["wrk_cpu_ticks"] for r in rs) / CLK_TCK
                                                * 1e6 / max(1, reqs), 1),
                    "other_load_cpu_pct": round(med([r["foreign_cpu_pct"] for r in rs]), 1),
                    "loadavg_1m": [r["loadavg"][0] for r in rs],
                }
                rows.append(row)
    idx = {(r["server"], r["scenario"], r["connections"]): r for r in rows}
    for r in rows:
        st = idx.get((r["server"], "static", r["connections"]))
        if st and st["rps"]:
            r["ratio_to_static"] = round(r["rps"] / st["rps"], 3)
        if r["server"] == "mod_hello" and r["scenario"] != "static":
            base = r["scenario"].split("-")[0]  # get-cached against PHP's get
            php = idx.get(("php", base, r["connections"]))
            if php and php["rps"]:
                r["ratio_to_php"] = round(r["rps"] / php["rps"], 3)
                # Each repetition against the PHP run right after it.
                h = {x["rep"]: x["rps"] for x in by[("hello", r["scenario"], r["connections"])]}
                q = {x["rep"]: x["rps"] for x in by[("php", base, r["connections"])]}
                r["ratio_to_php_runs"] = [round(h[k] / q[k], 3) for k in sorted(h) if q.get(k)]
        if st and st["rps"]:
            h = {x["rep"]: x["rps"] for x in by[(SERVER_KEYS[r["server"]], r["scenario"],
                                                 r["connections"])]}
            q = {x["rep"]: x["rps"] for x in by[(SERVER_KEYS[r["server"]], "static",
                                                 r["connections"])]}
            r["ratio_to_static_runs"] = [round(h[k] / q[k], 3) for k in sorted(h) if q.get(k)]
    # Statements per request: every run of a scenario, probe overhead out.
    dbstats = {}
    for (name, scenario, conns), rs in by.items():
        key = (name, scenario)
        d = dbstats.setdefault(key, {"requests": 0, "probes": 0, "delta": {}})
        d["requests"] += sum(r["requests"] for r in rs)
        d["probes"] += len(rs)
        for r in rs:
            for k in STATUS_KEYS:
                d["delta"][k] = d["delta"].get(k, 0) + r["status_delta"].get(k, 0)
    for key, d in dbstats.items():
        per = {}
        for k in STATUS_KEYS:
            v = d["delta"].get(k, 0) - overhead.get(k, 0) * d["probes"]
            per[k] = round(v / max(1, d["requests"]), 4)
        d["per_request"] = per
    for r in rows:
        name = "hello" if r["server"] == "mod_hello" else "php"
        d = dbstats.get((name, r["scenario"]))
        r["db_per_request"] = d["per_request"] if d and r["scenario"] != "static" else None
    return rows, dbstats


def fmt_int(x):
    return f"{x:,.0f}"


def fmt_ratio(x):
    return "–" if x is None else f"{x:.2f}×"


def write_results(b, rows, dbstats, info, runs):
    os.makedirs(b.outdir, exist_ok=True)
    L = []
    L.append("# mod_hello benchmark results")
    L.append("")
    L.append(f"Run {info['started']} by `make bench` (bench/bench.py) on commit "
             f"{info['commit']}; {info['nproc']} CPUs; "
             f"wrk -t{info['wrk_threads']} on the same machine; {info['repeat']} × "
             f"{info['duration_s']} s per cell, medians shown; {info['users']:,} seeded users; "
             f"static file {info['static_bytes']} bytes (a real GET answer); mix = "
             f"{100 - info['put_percent']}/{info['put_percent']} GET/PUT; MariaDB "
             f"innodb_flush_log_at_trx_commit=1.")
    if info.get("extra_conf"):
        L.append("")
        L.append(f"**Not the shipped configuration**: extra lines {info['extra_conf']}.")
    L.append("")
    L.append(f"Machine: load average {info['loadavg_before']} before, "
             f"{info['loadavg_after']} after ({info['elapsed_s']} s). \"Other load\" is the CPU "
             f"the rest of the machine used during a run (busy time from /proc/stat minus "
             f"httpd, MariaDB and wrk), as a share of both cores.")
    L.append("")
    L.append("| scenario | conns | server | req/s | p50 ms | p99 ms | errors | × static | "
             "× PHP | httpd CPU µs/req | MariaDB CPU µs/req | wrk CPU µs/req | other load | "
             "req/s of each run |")
    L.append("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in rows:
        L.append(f"| {r['scenario']} | {r['connections']} | {r['server']} | {fmt_int(r['rps'])} | "
                 f"{r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['errors']} | "
                 f"{fmt_ratio(r['ratio_to_static'])} | {fmt_ratio(r['ratio_to_php'])} | "
                 f"{r['httpd_cpu_us_per_req']:.0f} | {r['mariadb_cpu_us_per_req']:.0f} | "
                 f"{r['wrk_cpu_us_per_req']:.0f} | {r['other_load_cpu_pct']:.0f}% | "
                 f"{', '.join(fmt_int(x) for x in r['rps_runs'])} |")
    L.append("")
    L.append("errors = non-2xx answers counted by the Lua script + wrk socket errors, summed "
             "over the repetitions (wrk's own \"Non-2xx or 3xx\" count is in results.json as "
             "`wrk_non_2xx`).")
    L.append("")
    # Targets.
    idx = {(r["server"], r["scenario"], r["connections"]): r for r in rows}
    L.append("## Targets")
    L.append("")
    L.append("Measured: the ratio of the medians. Each repetition: the ratio of one run to the "
             "run of the other side right after it (they ran seconds apart), lowest–highest.")
    L.append("")
    L.append("| target | measured | each repetition | met |")
    L.append("|---|---|---|---|")

    def target(label, value, ok, runs=None):
        spread = ""
        if runs:
            spread = f"{min(runs):.2f}–{max(runs):.2f}×"
        L.append(f"| {label} | {value} | {spread} | {'yes' if ok else '**no**'} |")
    for c in info["connections"]:
        g = idx.get(("mod_hello", "get", c))
        p = idx.get(("mod_hello", "put", c))
        if g and g["ratio_to_static"] is not None:
            target(f"GET at {c} conns ≥ 0.75× static", fmt_ratio(g["ratio_to_static"]),
                   g["ratio_to_static"] >= 0.75, g.get("ratio_to_static_runs"))
        if g and g["ratio_to_php"] is not None:
            target(f"GET at {c} conns ≥ 1.3× PHP", fmt_ratio(g["ratio_to_php"]),
                   g["ratio_to_php"] >= 1.3, g.get("ratio_to_php_runs"))
        if p and p["ratio_to_php"] is not None:
            target(f"PUT at {c} conns ≥ 1.5× PHP (durable commits)",
                   fmt_ratio(p["ratio_to_php"]), p["ratio_to_php"] >= 1.5,
                   p.get("ratio_to_php_runs"))
    for c in info["connections"]:
        g = idx.get(("mod_hello", "get-cached", c))
        m = idx.get(("mod_hello", "mix-cached", c))
        if c != 32:
            continue
        if g and g["ratio_to_static"] is not None:
            target(f"get-cached at {c} conns ≥ 1.0× static", fmt_ratio(g["ratio_to_static"]),
                   g["ratio_to_static"] >= 1.0, g.get("ratio_to_static_runs"))
        if g and g["ratio_to_php"] is not None:
            target(f"get-cached at {c} conns ≥ 4× PHP", fmt_ratio(g["ratio_to_php"]),
                   g["ratio_to_php"] >= 4.0, g.get("ratio_to_php_runs"))
        if m and m["ratio_to_php"] is not None:
            target(f"mix-cached at {c} conns ≥ 2.5× PHP", fmt_ratio(m["ratio_to_php"]),
                   m["ratio_to_php"] >= 2.5, m.get("ratio_to_php_runs"))
    d = dbstats.get(("hello", "get-cached"))
    if d:
        q = d["per_request"]["Questions"]
        target("get-cached: no statement per GET once warm (Questions per request)",
               f"{q:.4f}", q < 0.01)
    for scen in ("get", "put"):
        d = dbstats.get(("hello", scen))
        if d:
            q = d["per_request"]["Questions"]
            target(f"one statement per {scen.upper()} (Questions per request)", f"{q:.3f}",
                   abs(q - 1) < 0.02)
            pings = d["per_request"].get("Com_admin_commands", 0)
            # mod_dbd checks each connection it lends: one ping per request.
            target(f"at most one ping per {scen.upper()}, mod_dbd's check of its loan "
                   "(Com_admin_commands per request)", f"{pings:.4f}", pings <= 1.01)
    errs = sum(r["errors"] for r in rows)
    target("no errors in any run", str(errs), errs == 0)
    target("p99 reported for every scenario", "yes", all(r["p99_ms"] is not None for r in rows))
    L.append("")
    # The floor of any handler on this Apache (docs/performance.md).
    if any(r["scenario"] == "const" for r in rows):
        L.append("## Against the constant-answer handler")
        L.append("")
        L.append("`const` is bench/mod_bench_const.c on mod_hello's Apache: the static file's bytes "
                 "from memory through a handler, nothing else. Medians; CPU is httpd's per request.")
        L.append("")
        L.append("| conns | static req/s | const req/s | get-cached req/s | const × static | "
                 "get-cached × const | httpd µs/req static / const / get-cached |")
        L.append("|---:|---:|---:|---:|---:|---:|---|")
        for c in info["connections"]:
            st = idx.get(("mod_hello", "static", c))
            k = idx.get(("mod_hello", "const", c))
            g = idx.get(("mod_hello", "get-cached", c))
            if not (st and k):
                continue
            gr = fmt_int(g["rps"]) if g else "–"
            gk = fmt_ratio(round(g["rps"] / k["rps"], 3)) if g and k["rps"] else "–"
            gc = g["httpd_cpu_us_per_req"] if g else "–"
            L.append(f"| {c} | {fmt_int(st['rps'])} | {fmt_int(k['rps'])} | {gr} | "
                     f"{fmt_ratio(k['ratio_to_static'])} | {gk} | "
                     f"{st['httpd_cpu_us_per_req']} / {k['httpd_cpu_us_per_req']} / {gc} |")
        L.append("")
    # Statements.
    L.append("## MariaDB counters per request")
    L.append("")
    L.append("`SHOW GLOBAL STATUS` before and after every run, summed over runs and divided by "
             "the requests wrk completed; the counters that the status query itself moves are "
             "taken out. `Com_admin_commands` counts COM_PING: mod_dbd pings each "
             "connection it lends, so each mod_hello request pings once; PDO "
             "pings a persistent connection each time a request reuses it. Pings are not in "
             "`Questions`.")
    L.append("")
    keys = [k for k in STATUS_KEYS if any(
        abs(d["per_request"].get(k, 0)) >= 0.0005 for (n, s), d in dbstats.items()
        if s != "static")]
    keys = [k for k in keys if k not in ("Bytes_received", "Bytes_sent")] + \
           [k for k in ("Bytes_received", "Bytes_sent") if k in keys]
    L.append("| server | scenario | requests | " + " | ".join(keys) + " |")
    L.append("|---|---|---:|" + "---:|" * len(keys))
    for name in ("hello", "php"):
        for scen in ("get", "put", "mix", "static"):
            d = dbstats.get((name, scen))
            if not d:
                continue
            L.append(f"| {SERVER_NAMES[name]} | {scen} | {d['requests']:,} | " + " | ".join(
                f"{d['per_request'].get(k, 0):.3f}" for k in keys) + " |")
    L.append("")
    L.append("## CPU per request")
    L.append("")
    L.append("utime+stime from /proc/<pid>/stat of every httpd process (parent and children) "
             "and of mariadbd, before and after each run, divided by the requests served; "
             "all runs of a cell together.")
    L.append("")
    L.append("| scenario | conns | server | httpd µs/req | MariaDB µs/req | total µs/req |")
    L.append("|---|---:|---|---:|---:|---:|")
    for r in rows:
        L.append(f"| {r['scenario']} | {r['connections']} | {r['server']} | "
                 f"{r['httpd_cpu_us_per_req']:.1f} | {r['mariadb_cpu_us_per_req']:.1f} | "
                 f"{r['httpd_cpu_us_per_req'] + r['mariadb_cpu_us_per_req']:.1f} |")
    L.append("")
    md = "\n".join(L) + "\n"
    with open(os.path.join(b.outdir, "results.md"), "w") as f:
        f.write(md)
    with open(os.path.join(b.outdir, "results.json"), "w") as f:
        json.dump(rows, f, indent=1)
        f.write("\n")
    # The raw material, for whoever wants to look again: kept per run
    # (build/bench/runs-<time>.json), runs.json being the last one.
    raw = os.path.join(RUN, "runs-" + info.get("stamp", time.strftime("%Y%m%d-%H%M%S")) + ".json")
    with open(raw, "w") as f:
        json.dump({"info": info, "runs": runs,
                   "dbstats": {f"{k[0]}/{k[1]}": v for k, v in dbstats.items()}}, f, indent=1)
    shutil.copyfile(raw, os.path.join(RUN, "runs.json"))
    print()
    print(md)
    log(f"bench: wrote {b.outdir}/results.md, {b.outdir}/results.json "
        f"(raw runs: {raw})")


# ---------------------------------------------------------------- memory


def child_memory(server):
    return {pid: proc_status(pid) for pid in children_of(server.ppid)}


def cmd_memory():
    """RSS of each child after 10,000 requests and after 1,000,000 (and at
    checkpoints between, to tell a leak, which grows with every request, from
    threads and pools touched for the first time, which levels off)."""
    b = Bench()
    total = env_int("BENCH_MEMORY_REQUESTS", 1000000)
    points = sorted({int(x) for x in env_list(
        "BENCH_MEMORY_CHECKPOINTS", f"10000 100000 {total // 2} {total}") if int(x) <= total}
        | {total})
    conns = env_int("BENCH_MEMORY_CONNECTIONS", 32)
    threads = env_int("BENCH_THREADS", 2)
    put_percent = env_int("BENCH_PUT_PERCENT", 10)
    b.check_prereqs(php=False)
    info = {"started": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "commit": git_commit(),
            "loadavg_before": loadavg()}
    try:
        b.start(["hello"], keepalive=3600)
        s = b.servers["hello"]
        snaps = [(0, child_memory(s))]
        done = 0
        errors = 0
        rates = []
        for point in points:
            r = run_wrk(s.url(), "mix", conns, 3600, threads, b.users, put_percent,
                        stop_after=max(1, (point - done) // threads))
            done += r["requests"]
            errors += r["non_2xx"] + r["socket_errors"]
            rates.append(r["rps"])
            snaps.append((done, child_memory(s)))
            log(f"bench: {done:,} requests, errors {errors}, RSS KiB: " + ", ".join(
                f"{pid}: {m.get('VmRSS')}" for pid, m in sorted(snaps[-1][1].items())))
        info["loadavg_after"] = loadavg()
        pids = sorted(snaps[-1][1])
        first = snaps[1]
        last = snaps[-1]
        L = ["# mod_hello memory after many requests", "",
             f"Run {info['started']} by `make bench-memory` on commit {info['commit']}; one "
             f"Apache (event MPM, {env_int('BENCH_HELLO_CHILDREN', 2)} children × "
             f"{env_int('BENCH_HELLO_THREADS', 128)} threads, DBDMax "
             f"{env_int('BENCH_DBDMAX', 64)}), wrk -t{threads} -c{conns}, "
             f"{100 - put_percent}/{put_percent} GET/PUT mix on {b.users:,} users; load average "
             f"{info['loadavg_before']} before, {info['loadavg_after']} after. "
             f"{done:,} requests, {errors} errors, {statistics.median(rates):,.0f} req/s "
             "(median of the legs).", "",
             "VmRSS of each child (KiB) after the number of requests in the column head "
             "(counted by wrk, both children together):", "",
             "| child pid | " + " | ".join(f"{n:,}" for n, _ in snaps) +
             f" | growth {first[0]:,} → {last[0]:,} |",
             "|---:|" + "---:|" * (len(snaps) + 1)]
        rows = []
        for pid in pids:
            vals = [m.get(pid, {}).get("VmRSS") for _, m in snaps]
            a = first[1].get(pid, {}).get("VmRSS") or 0
            z = last[1].get(pid, {}).get("VmRSS") or 0
            L.append(f"| {pid} | " + " | ".join("–" if v is None else str(v) for v in vals) +
                     f" | {z - a:+d} |")
            rows.append({"pid": pid, "rss_kib": {str(n): m.get(pid, {}).get("VmRSS")
                                                 for n, m in snaps},
                         "rss_anon_kib": {str(n): m.get(pid, {}).get("RssAnon")
                                          for n, m in snaps},
                         "vm_hwm_kib": last[1][pid].get("VmHWM"),
                         "threads": last[1][pid].get("Threads")})
        L.append("")
        L.append("RssAnon (KiB), the heap and stacks without the mapped files:")
        L.append("")
        L.append("| child pid | " + " | ".join(f"{n:,}" for n, _ in snaps) + " |")
        L.append("|---:|" + "---:|" * len(snaps))
        for pid in pids:
            L.append(f"| {pid} | " + " | ".join(
                str(m.get(pid, {}).get("RssAnon", "–")) for _, m in snaps) + " |")
        L.append("")
        md = "\n".join(L) + "\n"
        os.makedirs(b.outdir, exist_ok=True)
        with open(os.path.join(b.outdir, "memory.md"), "w") as f:
            f.write(md)
        with open(os.path.join(b.outdir, "memory.json"), "w") as f:
            json.dump({"info": info, "checkpoints": [n for n, _ in snaps], "requests": done,
                       "errors": errors, "children": rows}, f, indent=1)
            f.write("\n")
        print()
        print(md)
        log(f"bench: wrote {b.outdir}/memory.md and memory.json")
    finally:
        b.stop()
        log("bench: stopped httpd and MariaDB")


# ---------------------------------------------------------------- profile


def callgrind_objects(path):
    """Self instructions per object file and per function of one callgrind
    dump, from callgrind_annotate."""
    r = subprocess.run(["callgrind_annotate", "--inclusive=no", "--threshold=100",
                        "--show-percs=no", path], capture_output=True, text=True)
    if r.returncode != 0:
        r = subprocess.run(["callgrind_annotate", "--inclusive=no", "--threshold=100", path],
                           capture_output=True, text=True)
    objs = {}
    funcs = []
    total = None
    for line in r.stdout.splitlines():
        m = re.match(r"^\s*([\d,]+)\s+\(?[\d.%]*\)?\s*PROGRAM TOTALS", line)
        if m:
            total = int(m.group(1).replace(",", ""))
            continue
        m = re.match(r"^\s*([\d,]+)\s+(?:\([\d.]+%\)\s+)?(.*?):(.*?)\s+\[(.*)\]\s*$", line)
        if m:
            ir = int(m.group(1).replace(",", ""))
            obj = os.path.basename(m.group(4))
            objs[obj] = objs.get(obj, 0) + ir
            funcs.append((ir, m.group(3), obj, m.group(2)))
    return total, objs, funcs, r.stdout


def profile_once(b, s, pdir, scen, requests, warm):
    """httpd -X under callgrind: warm-up, then `requests` of one scenario,
    then SIGTERM; callgrind writes its dump as httpd exits."""
    s.port = free_port()
    s.write_conf({"USER_LINES": ""})
    shutil.chown(s.dir, "www-data", "www-data")
    out = os.path.join(pdir, f"{scen}-{requests}.callgrind")
    # As www-data from the start (no User directive): callgrind's dump file
    # then belongs to the user httpd runs as.
    vg = subprocess.Popen(["setpriv", "--reuid=www-data", "--regid=www-data", "--init-groups",
                           "valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                           "apache2", "-X", "-d", s.dir, "-f", s.conf],
                          cwd=pdir, stdout=subprocess.DEVNULL,
                          stderr=open(os.path.join(pdir, f"{scen}-{requests}.valgrind.log"), "w"),
                          start_new_session=True)
    s.proc = vg
    s.ppid = vg.pid
    deadline = time.time() + 180
    while True:
        try:
            socket.create_connection(("127.0.0.1", s.port), timeout=0.5).close()
            break
        except OSError:
            if vg.poll() is not None or time.time() > deadline:
                raise Failure(f"httpd under valgrind did not start; see {pdir}")
            time.sleep(0.5)
    # Warm-up: DBD connections opened, both statements prepared on them.
    # 2 connections for 4 threads: a worker is always idle when a keep-alive
    # request arrives, so the event MPM never closes a connection on wrk.
    w = run_wrk(s.url(), "mix", 2, 900, 1, b.users, 50, stop_after=warm, seed=1)
    r = run_wrk(s.url(), scen, 2, 900, 1, b.users, 0, stop_after=requests, seed=2)
    s.stop(timeout=300)
    errors = w["non_2xx"] + w["socket_errors"] + r["non_2xx"] + r["socket_errors"]
    if errors:
        log(f"bench: {scen} under valgrind: {errors} errors; first: "
            f"{w['first_bad'] if w['first_bad'] != '-' else r['first_bad']}; "
            f"socket errors {w['socket_errors'] + r['socket_errors']}")
    total, objs, funcs, text = callgrind_objects(out)
    with open(out + ".annotate.txt", "w") as f:
        f.write(text)
    return {"requests": r["requests"], "errors": errors, "total": total or 0, "objects": objs,
            "funcs": {(fn, obj): ir for ir, fn, obj, _ in funcs}}


def perf_profile(b, s, pdir, scenarios):
    """CPU time per request by process and by user/kernel: perf record
    (software clock, whole machine) while wrk runs each scenario at 32
    connections on the benchmark's own configuration."""
    seconds = env_int("BENCH_PROFILE_PERF_SECONDS", 5)
    freq = 1999
    out = {}
    for scen in scenarios:
        run_wrk(s.url(), scen, 32, 2, 2, b.users, 10)       # warm
        data = os.path.join(pdir, f"perf-{scen}.data")
        rec = subprocess.Popen(["perf", "record", "-q", "-e", "cpu-clock", "-F", str(freq), "-a",
                                "-o", data], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
        try:
            time.sleep(0.5)
            r = run_wrk(s.url(), scen, 32, seconds, 2, b.users, 10)
        finally:
            rec.send_signal(signal.SIGINT)
            rec.wait()
        rep = subprocess.run(["perf", "report", "-i", data, "--stdio", "--sort", "comm,dso",
                              "-n", "--percent-limit", "0"], capture_output=True, text=True)
        rows = {}
        for line in rep.stdout.splitlines():
            m = re.match(r"^\s*([\d.]+)%\s+(\d+)\s+(\S+)\s+(\S+)\s*$", line)
            if not m:
                continue
            comm, dso = m.group(3), m.group(4)
            who = comm if comm in ("apache2", "mariadbd", "wrk") else "other processes"
            side = "kernel" if dso.startswith("[kernel") else "user"
            rows[(who, side)] = rows.get((who, side), 0) + int(m.group(2))
        sym = subprocess.run(["perf", "report", "-i", data, "--stdio", "--comms",
                              "apache2,mariadbd", "--sort", "comm,dso,sym", "-n",
                              "--percent-limit", "0.7"], capture_output=True, text=True)
        with open(os.path.join(pdir, f"perf-{scen}.txt"), "w") as f:
            f.write(rep.stdout + "\n" + sym.stdout)
        us = {k: v / freq * 1e6 / max(1, r["requests"]) for k, v in rows.items()}
        out[scen] = {"requests": r["requests"], "rps": r["rps"], "us": us,
                     "loadavg": loadavg()}
        log(f"bench: perf {scen}: {r['rps']:,.0f} req/s, CPU µs/request: " + ", ".join(
            f"{k[0]} {k[1]} {v:.1f}" for k, v in sorted(us.items())))
    return out


def cmd_profile():
    """Instructions per request by object and function: two runs of httpd -X
    under callgrind per scenario, with N and 2N requests after the same
    warm-up; their difference divided by N leaves out startup, warm-up and
    shutdown. (callgrind_control cannot be used: it is only heard while
    httpd runs code, and an idle httpd sleeps in epoll_wait.)"""
    if shutil.which("valgrind") is None:
        raise Failure("valgrind is missing: apt-get install valgrind")
    b = Bench()
    n = env_int("BENCH_PROFILE_REQUESTS", 3000)
    warm = env_int("BENCH_PROFILE_WARMUP", 300)
    scenarios = env_list("BENCH_PROFILE_SCENARIOS", "static get put")
    b.check_prereqs(php=False)
    pdir = os.path.join(RUN, "profile")
    shutil.rmtree(pdir, ignore_errors=True)
    os.makedirs(pdir)
    shutil.chown(pdir, "www-data", "www-data")
    try:
        b.start(["hello"], keepalive=3600)
        b.write_static()
        s = b.servers["hello"]
        perf = None
        if shutil.which("perf") and os.environ.get("BENCH_PROFILE_PERF", "1") != "0":
            perf = perf_profile(b, s, pdir, scenarios)
        s.stop()
        # One child of 4 threads, 4 DBD connections: -X runs one process.
        s.subst.update({"CHILDREN": 1, "THREADS": 4, "WORKERS": 4, "DBDMAX": 4})
        results = {}
        for scen in scenarios:
            one = profile_once(b, s, pdir, scen, n, warm)
            two = profile_once(b, s, pdir, scen, 2 * n, warm)
            reqs = two["requests"] - one["requests"]
            objs = {o: two["objects"].get(o, 0) - one["objects"].get(o, 0)
                    for o in set(two["objects"]) | set(one["objects"])}
            funcs = [(two["funcs"].get(k, 0) - one["funcs"].get(k, 0), k[0], k[1], "")
                     for k in set(two["funcs"]) | set(one["funcs"])]
            results[scen] = {"requests": reqs, "errors": one["errors"] + two["errors"],
                             "total": two["total"] - one["total"], "objects": objs,
                             "funcs": funcs}
            log(f"bench: {scen}: {(two['total'] - one['total']) / max(1, reqs):,.0f} "
                f"instructions per request ({one['requests']} and {two['requests']} requests)")
        write_profile(b, results, pdir, perf)
    finally:
        b.stop()
        log("bench: stopped httpd and MariaDB")


def write_profile(b, results, pdir, perf=None):
    L = ["# Where the time goes: callgrind of httpd -X", "",
         "`make bench-profile`: httpd -X (event MPM, one process, 4 threads, DBDMax 4) under "
         "valgrind --tool=callgrind, wrk -t1 -c2 on keep-alive connections. Each scenario runs "
         "twice after the same warm-up, with N and 2N requests; the difference of the two "
         "dumps divided by N is the cost of one request, startup and warm-up left out. "
         "Instructions (Ir) in user space only: the kernel's share (syscalls, TCP) is not "
         f"counted. Dumps and callgrind_annotate output in {pdir}.", ""]
    L.append(f"Commit: {git_commit()}.")
    L.append("")
    for scen, r in results.items():
        own = r["objects"].get(os.path.basename(MODULE), 0) / max(1, r["requests"])
        tot = (r["total"] or 0) / max(1, r["requests"])
        L.append(f"- **{scen}**: {own:,.0f} instructions per request in mod_hello.so's own code, "
                 f"of {tot:,.0f} in all of httpd's user space ({own / max(1, tot) * 100:.1f} %).")
    L.append("")
    objs = sorted({o for r in results.values() for o in r["objects"]},
                  key=lambda o: -max(r["objects"].get(o, 0) / max(1, r["requests"])
                                     for r in results.values()))
    scen = list(results)
    L.append("| object | " + " | ".join(f"{s} Ir/req" for s in scen) + " |")
    L.append("|---|" + "---:|" * len(scen))
    L.append("| **total** | " + " | ".join(
        f"**{(results[s]['total'] or 0) / max(1, results[s]['requests']):,.0f}**"
        for s in scen) + " |")
    for o in objs:
        vals = [results[s]["objects"].get(o, 0) / max(1, results[s]["requests"]) for s in scen]
        if max(vals) < 50:
            continue
        L.append(f"| {o} | " + " | ".join(f"{v:,.0f}" for v in vals) + " |")
    L.append("")
    for s in scen:
        r = results[s]
        L.append(f"### {s}: top functions ({r['requests']:,} requests, errors {r['errors']})")
        L.append("")
        L.append("| Ir/req | function | object |")
        L.append("|---:|---|---|")
        for ir, fn, obj, _ in sorted(r["funcs"], reverse=True)[:25]:
            L.append(f"| {ir / max(1, r['requests']):,.0f} | `{fn}` | {obj} |")
        L.append("")
        mine = [(ir, fn) for ir, fn, obj, _ in r["funcs"] if obj == os.path.basename(MODULE)]
        if mine:
            L.append(f"mod_hello.so's own functions ({s}):")
            L.append("")
            L.append("| Ir/req | function |")
            L.append("|---:|---|")
            for ir, fn in sorted(mine, reverse=True):
                if ir / max(1, r["requests"]) < 0.5:
                    continue
                L.append(f"| {ir / max(1, r['requests']):,.1f} | `{fn}` |")
            L.append("")
    if perf:
        L.append("## CPU time per request, kernel included (perf)")
        L.append("")
        L.append("`perf record -e cpu-clock -a` (software clock; this VM has no hardware "
                 "counters) while wrk -t2 -c32 runs each scenario against the benchmark's own "
                 "configuration (2 children × 128 threads); samples per process and per "
                 "user/kernel side, as CPU µs per request. \"other processes\" is whatever "
                 "else ran on the machine.")
        L.append("")
        scen = list(perf)
        keys = sorted({k for p in perf.values() for k in p["us"]},
                      key=lambda k: (["apache2", "mariadbd", "wrk", "other processes"].index(k[0]),
                                     k[1]))
        L.append("| process | side | " + " | ".join(f"{x} µs/req" for x in scen) + " |")
        L.append("|---|---|" + "---:|" * len(scen))
        L.append("| (req/s) | | " + " | ".join(f"{perf[x]['rps']:,.0f}" for x in scen) + " |")
        for k in keys:
            L.append(f"| {k[0]} | {k[1]} | " + " | ".join(
                f"{perf[x]['us'].get(k, 0):.1f}" for x in scen) + " |")
        L.append("| **all but other** | | " + " | ".join(
            f"**{sum(v for kk, v in perf[x]['us'].items() if kk[0] != 'other processes'):.1f}**"
            for x in scen) + " |")
        L.append("")
    md = "\n".join(L) + "\n"
    os.makedirs(b.outdir, exist_ok=True)
    with open(os.path.join(b.outdir, "profile.md"), "w") as f:
        f.write(md)
    print()
    print(md)
    log(f"bench: wrote {b.outdir}/profile.md")


# ---------------------------------------------------------------- main


def cmd_report():
    """results.md and results.json again from the raw runs of the last
    make bench (build/bench/runs.json, or the file given after "report")."""
    b = Bench()
    with open(sys.argv[2] if len(sys.argv) > 2 else os.path.join(RUN, "runs.json")) as f:
        raw = json.load(f)
    info, runs = raw["info"], raw["runs"]
    scenarios = list(dict.fromkeys(r["scenario"] for r in runs))
    servers = list(dict.fromkeys(r["server"] for r in runs))
    rows, dbstats = summarize(runs, info["status_probe_overhead"], scenarios,
                              info["connections"], servers)
    b.static_size = info["static_bytes"]
    write_results(b, rows, dbstats, info, runs)


def cmd_serve():
    """The benchmark's servers, seeded, until Ctrl-C: to look at by hand."""
    b = Bench()
    servers = env_list("BENCH_SERVERS", "hello php")
    b.check_prereqs(php="php" in servers)
    try:
        b.start(servers, keepalive=3600)
        b.write_static()
        contract_check(b)
        for name, s in b.servers.items():
            log(f"{SERVER_NAMES[name]}: {s.url()}/hello/{username(0)}  {s.url()}/static.json  "
                f"(pids {s.pids()})")
        log(f"MariaDB: scripts/mariadb-sandbox sql {b.db.dir} hello  (pid {b.db.pid()})")
        log("Ctrl-C stops everything.")
        while True:
            time.sleep(3600)
    finally:
        b.stop()
        log("bench: stopped httpd and MariaDB")


def main():
    cmd = sys.argv[1] if len(sys.argv) > 1 else "run"
    cmds = {"run": cmd_run, "memory": cmd_memory, "profile": cmd_profile, "serve": cmd_serve,
            "report": cmd_report}
    if cmd not in cmds:
        print(__doc__, file=sys.stderr)
        return 2

    def on_signal(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")
    # SIGINT too: a shell without job control starts background commands
    # with SIGINT ignored, and Python then leaves it ignored.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    try:
        cmds[cmd]()
    except Failure as e:
        print(f"bench: FAILED: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bench: interrupted; everything it started is stopped", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
