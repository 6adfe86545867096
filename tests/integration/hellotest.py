"""Harness for the mod_hello integration tests, in the style of httpd's pyhttpd.

- MariaDB: a throwaway server driven by scripts/mariadb-sandbox.
- Httpd: an httpd instance with its own server root, generated httpd.conf,
  start/stop/restart and `apache2 -t`.
- Client: raw-socket HTTP/1.1 client; every response it returns has been
  checked against docs/openapi.yaml by Contract.check.
- days_until_birthday / expected_message: an independent implementation of
  the next-birthday rule of docs/API.md.
"""
import calendar
import http.client
import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.parse
from datetime import date, datetime, timezone
from pathlib import Path

import jsonschema
import yaml

REPO = Path(__file__).resolve().parents[2]
SANDBOX = REPO / "scripts" / "mariadb-sandbox"
MODULE = REPO / "build" / "mod_hello.so"
OPENAPI = REPO / "docs" / "openapi.yaml"
APACHE2 = shutil.which("apache2") or "/usr/sbin/apache2"
MODULES_DIR = "/usr/lib/apache2/modules"

# Reasons of docs/API.md, "Errors" table.
R_PATH = "not found: use {base}/<username>"
R_METHOD = "method not allowed: use GET, HEAD or PUT"
R_USERNAME = "username must be 1 to 64 ASCII letters (A-Z, a-z)"
R_MEDIA = "Content-Type must be application/json"
R_TOO_LARGE = "request body too large: the limit is {limit} bytes"
R_READ = "request body could not be read"
R_TIMEOUT = "request body was not received in time"
R_NOT_OBJECT = 'request body must be a JSON object such as {"dateOfBirth":"2000-01-31"}'
R_NO_DATE = "dateOfBirth is required, as a string YYYY-MM-DD"
R_BAD_DATE = "dateOfBirth must be a real date as YYYY-MM-DD, year 1000 or later"
R_FUTURE = "dateOfBirth must be a date before today, as YYYY-MM-DD"
R_UNKNOWN = "no date of birth is saved for this username"
R_UNAVAILABLE = "the database is unavailable; retry later"

ALLOW = "GET, HEAD, PUT"

# POSIX TZ values (no tzdata needed): local time UTC+14 and UTC-12. At any
# hour of the day, the local date of one of them differs from the UTC date.
TZ_EAST = "KIR-14"
TZ_WEST = "BIT+12"


def free_port():
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout, interval=0.05, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


# ---- the birthday rule, written independently of src/date.c -------------

def utc_today():
    return datetime.now(timezone.utc).date()


def birthday_in(dob, year):
    """The day a person born on dob celebrates in year: 29 February falls on
    28 February in years without one."""
    if dob.month == 2 and dob.day == 29 and not calendar.isleap(year):
        return date(year, 2, 28)
    return date(year, dob.month, dob.day)


def days_until_birthday(dob, today):
    nxt = birthday_in(dob, today.year)
    if nxt < today:
        nxt = birthday_in(dob, today.year + 1)
    return (nxt - today).days


def expected_message(username, dob, today):
    n = days_until_birthday(dob, today)
    if n == 0:
        return f"Hello, {username}! Happy birthday!"
    return f"Hello, {username}! Your birthday is in {n} day(s)"


def same_day_in_2000(d):
    """d's month and day in the year 2000 (a leap year, so 29 February exists),
    which is before any 'today' these tests run on."""
    return date(2000, d.month, d.day)


# ---- MariaDB --------------------------------------------------------------

class MariaDB:
    """A throwaway MariaDB (scripts/mariadb-sandbox) in its own directory."""

    def __init__(self, directory, password="hello-test-pw"):
        self.dir = Path(directory)
        self.password = password
        self.port = None

    def _sandbox(self, *args, stdin=None, check=True, timeout=60):
        proc = subprocess.run([str(SANDBOX), *args], input=stdin, capture_output=True,
                              text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise RuntimeError(f"mariadb-sandbox {' '.join(args)} failed "
                               f"({proc.returncode}):\n{proc.stdout}{proc.stderr}")
        return proc

    def init(self):
        self._sandbox("init", str(self.dir))

    def start(self, port=None):
        if port is not None:
            self.port = port
        if self.port is None:
            self.port = free_port()
        self._sandbox("start", str(self.dir), str(self.port))

    def setup(self):
        self._sandbox("setup", str(self.dir), self.password)

    def stop(self):
        self._sandbox("stop", str(self.dir), check=False)

    def create(self, port=None):
        self.init()
        self.start(port)
        self.setup()
        return self

    @property
    def pid(self):
        try:
            return int((self.dir / "mysqld.pid").read_text().strip())
        except (OSError, ValueError):
            return None

    def running(self):
        pid = self.pid
        if pid is None:
            return False
        try:
            os.kill(pid, 0)
            return True
        except OSError:
            return False

    def sql(self, query, database="hello"):
        """Runs query as root; returns the rows as lists of strings
        (NULL reads as the string 'NULL')."""
        proc = self._sandbox("sql", str(self.dir), "-N", "-B", database, "-e", query)
        return [line.split("\t") for line in proc.stdout.splitlines()]

    def date_of_birth(self, username):
        """The stored date of birth of username as 'YYYY-MM-DD', or None."""
        if not re.fullmatch(r"[A-Za-z]{1,64}", username):
            raise ValueError(username)
        rows = self.sql("SELECT DATE_FORMAT(date_of_birth, '%Y-%m-%d') FROM hello_users "
                        f"WHERE username = '{username}'")
        assert len(rows) <= 1
        return rows[0][0] if rows else None

    def dbd_params(self):
        return (f"host=127.0.0.1 port={self.port} user=hello pass={self.password} "
                "dbname=hello reconnect=0 group=mod_hello")


# ---- httpd ----------------------------------------------------------------

CONF_TEMPLATE = """\
# Generated by tests/integration/hellotest.py
ServerRoot "{root}"
ServerName 127.0.0.1
Listen 127.0.0.1:{port}
DefaultRuntimeDir "{root}"
PidFile "{root}/httpd.pid"
{user}

LoadModule mpm_event_module   {moddir}/mod_mpm_event.so
LoadModule authz_core_module  {moddir}/mod_authz_core.so
LoadModule reqtimeout_module  {moddir}/mod_reqtimeout.so
{load_dbd}
LoadModule hello_module       "{module}"

ErrorLog "{root}/error.log"
LogLevel warn hello:debug
LogFormat "%h %t \\"%r\\" %>s %b %Dus \\"%{{hello-error}}n\\"" hello
CustomLog "{root}/access.log" hello

StartServers        1
ServerLimit         2
ThreadsPerChild     25
MaxRequestWorkers   50
KeepAlive           On
KeepAliveTimeout    5
TraceEnable         Off
RequestReadTimeout  {reqtimeout}

{dbd}

<Location />
    Require all granted
</Location>

{locations}
{extra}
"""

DBD_TEMPLATE = """\
DBDriver  mysql
DBDParams "{params}"
DBDMin    0
DBDKeep   2
DBDMax    10
"""

# Error-log lines that mean a child died: "AH00052: child pid N exit signal
# Segmentation fault (11)", the kernel-style "segfault", a core dump.
CRASH_RE = re.compile(r"exit signal|segfault|Segmentation fault|core dump|AH00060|"
                      r"seems to have exited", re.I)


class Httpd:
    """One httpd instance with its own server root.

    locations maps a location path to the directives inside it besides
    `SetHandler hello`; the default is {"/hello": ""}.
    """

    instances = []  # every instance of the session, for the final health test

    def __init__(self, root, db=None, locations=None, extra="", load_dbd=True,
                 load_hello=True, reqtimeout="header=10-20,MinRate=500 body=10,MinRate=500",
                 dbd_params=None, dbd_after_hello=False, env=None):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.db = db
        self.port = free_port()
        self.locations = {"/hello": ""} if locations is None else dict(locations)
        self.extra = extra
        self.load_dbd = load_dbd
        self.load_hello = load_hello
        self.reqtimeout = reqtimeout
        self.dbd_params = dbd_params
        self.dbd_after_hello = dbd_after_hello
        self.env = dict(env or {})  # e.g. {"TZ": ...} for the httpd processes
        self.conf = self.root / "httpd.conf"
        self.error_log = self.root / "error.log"
        self.access_log = self.root / "access.log"
        self.pid_file = self.root / "httpd.pid"
        self.contract = Contract.get()
        self.write_config()
        Httpd.instances.append(self)

    # -- configuration

    def config_text(self):
        user = "User www-data\nGroup www-data" if os.geteuid() == 0 else ""
        if self.load_dbd:
            load_dbd = f"LoadModule dbd_module         {MODULES_DIR}/mod_dbd.so"
            params = self.dbd_params or (self.db.dbd_params() if self.db else
                                         "host=127.0.0.1 port=1 user=hello pass=x dbname=hello")
            dbd = DBD_TEMPLATE.format(params=params)
        else:
            load_dbd = ""
            dbd = ""
        locs = []
        for path, directives in self.locations.items():
            body = "\n".join("    " + line.strip() for line in directives.strip().splitlines()
                             if line.strip())
            locs.append(f"<Location {path}>\n    SetHandler hello\n{body}\n</Location>")
        text = CONF_TEMPLATE.format(
            root=self.root, port=self.port, user=user, moddir=MODULES_DIR, load_dbd=load_dbd,
            module=MODULE, reqtimeout=self.reqtimeout, dbd=dbd, locations="\n".join(locs),
            extra=self.extra)
        if not self.load_hello:
            text = re.sub(r"^LoadModule hello_module.*$", "", text, flags=re.M)
        elif self.dbd_after_hello and load_dbd:
            text = text.replace(load_dbd + "\n", "")
            text = re.sub(r"^(LoadModule hello_module.*)$", lambda m: m.group(1) + "\n" + load_dbd,
                          text, flags=re.M)
        return text

    def write_config(self):
        self.conf.write_text(self.config_text())

    def check_config(self):
        """`apache2 -t` on this configuration: (exit code, stdout + stderr)."""
        self.write_config()
        proc = subprocess.run([APACHE2, "-d", str(self.root), "-f", str(self.conf), "-t"],
                              capture_output=True, text=True, timeout=30)
        return proc.returncode, proc.stdout + proc.stderr

    # -- process control

    @property
    def pid(self):
        try:
            return int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None

    def _alive(self, pid):
        if pid is None:
            return False
        try:
            os.kill(pid, 0)
        except OSError:
            return False
        # A zombie of ours would still answer kill(0); check its state.
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            return stat.split(")")[-1].split()[0] != "Z"
        except OSError:
            return False

    def _apache2(self, *args):
        return subprocess.run([APACHE2, "-d", str(self.root), "-f", str(self.conf), *args],
                              capture_output=True, text=True, timeout=30,
                              env={**os.environ, **self.env})

    def _answers(self):
        """True once a child answers HTTP on the port."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                s.settimeout(2)
                s.sendall(b"GET /-harness-probe HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                          b"Connection: close\r\n\r\n")
                return s.recv(16).startswith(b"HTTP/1.1 ")
        except OSError:
            return False

    def start(self):
        self.write_config()
        proc = self._apache2("-k", "start")
        if proc.returncode != 0:
            raise RuntimeError(f"apache2 -k start failed ({proc.returncode}):\n"
                               f"{proc.stdout}{proc.stderr}\n{self.error_log_text()[-3000:]}")
        try:
            wait_until(self._answers, 15, what=f"httpd on port {self.port}")
        except TimeoutError:
            raise RuntimeError(f"httpd did not answer:\n{self.error_log_text()[-3000:]}")
        return self

    def stop(self):
        pid = self.pid
        if not self._alive(pid):
            return
        self._apache2("-k", "stop")
        try:
            wait_until(lambda: not self._alive(pid), 15, what=f"httpd pid {pid} to exit")
        except TimeoutError:
            os.kill(pid, signal.SIGKILL)
            wait_until(lambda: not self._alive(pid), 5, what=f"httpd pid {pid} to die")

    def restart(self, mode="stop-start"):
        """mode "stop-start": a full stop and start (a new parent process).
        mode "restart" or "graceful": `apache2 -k restart|graceful`, the parent
        rereads the config (post_config runs again) and starts new children;
        waits until the new generation answers."""
        if mode == "stop-start":
            self.stop()
            return self.start()
        assert mode in ("restart", "graceful"), mode
        self.write_config()
        before = self.error_log_text().count("resuming normal operations")
        proc = self._apache2("-k", mode)
        if proc.returncode != 0:
            raise RuntimeError(f"apache2 -k {mode} failed:\n{proc.stdout}{proc.stderr}")
        wait_until(lambda: self.error_log_text().count("resuming normal operations") > before,
                   15, what=f"the {mode}")
        wait_until(self._answers, 15, what=f"httpd on port {self.port}")
        return self

    # -- logs

    def error_log_text(self):
        try:
            return self.error_log.read_text(errors="replace")
        except OSError:
            return ""

    def access_log_lines(self):
        try:
            return self.access_log.read_text(errors="replace").splitlines()
        except OSError:
            return []

    def crash_lines(self):
        return [line for line in self.error_log_text().splitlines() if CRASH_RE.search(line)]

    def status_500_lines(self):
        return [line for line in self.access_log_lines()
                if re.search(r'" 5\d\d ', line) and not re.search(r'" 503 ', line)]

    def assert_healthy(self):
        crashes = self.crash_lines()
        assert not crashes, f"{self.root}/error.log shows a crashed child:\n" + "\n".join(crashes)
        bad = self.status_500_lines()
        assert not bad, f"{self.root}/access.log has 5xx answers other than 503:\n" + \
            "\n".join(bad)

    # -- clients

    def client(self):
        return Client(self.port, self.contract, bases=list(self.locations))

    @property
    def base_url(self):
        return f"http://127.0.0.1:{self.port}"


# ---- HTTP -------------------------------------------------------------------

class _Reader(io.BufferedReader):
    """The socket's read side: keeps the lines it hands out (the raw status
    line included) and stays open when http.client closes it, so that the
    bytes after the response can be read too."""

    def __init__(self, raw):
        super().__init__(raw)
        self.lines = []

    def readline(self, *args):
        line = super().readline(*args)
        self.lines.append(line)
        return line

    def close(self):
        pass

    def really_close(self):
        super().close()


class _FakeSock:
    def __init__(self, fp):
        self.fp = fp

    def makefile(self, *args, **kwargs):
        return self.fp


class Response:
    def __init__(self, method, path, status, reason, headers, body, trailing, lines, elapsed):
        self.method = method
        self.path = path
        self.status = status
        self.reason = reason
        self.headers = headers
        self.body = body
        self.trailing = trailing   # bytes after the response, before EOF
        self.lines = lines         # raw status and header lines, 1xx included
        self.elapsed = elapsed     # seconds from sending to the whole answer

    def header(self, name):
        return self.headers.get(name)

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    @property
    def error(self):
        return self.json()["error"]

    @property
    def message(self):
        return self.json()["message"]

    def __repr__(self):
        return (f"<{self.method} {self.path} -> {self.status} "
                f"{dict(self.headers.items())} {self.body[:300]!r}>")


DEFAULT = object()


class Client:
    """HTTP/1.1 over a fresh socket per request (Connection: close). Every
    response goes through Contract.check before it is returned."""

    def __init__(self, port, contract, bases=("/hello",), timeout=15):
        self.port = port
        self.contract = contract
        self.bases = list(bases)
        self.timeout = timeout

    def request(self, method, path, body=None, headers=None, content_type=DEFAULT,
                chunks=None, content_length=DEFAULT, raw_body=None, check=True):
        """Sends one request and returns the checked Response.

        body: bytes, str (UTF-8) or a JSON-able object (dumped); sent with its
        Content-Length. chunks: a list of bytes sent with Transfer-Encoding:
        chunked instead. content_type: for PUT defaults to application/json;
        None leaves the header out. content_length: overrides the header
        (None leaves it out). raw_body: bytes sent after the headers as they
        are (for a body shorter than its Content-Length, or bad chunking)."""
        hdrs = [("Host", f"127.0.0.1:{self.port}"), ("Connection", "close")]
        if content_type is DEFAULT:
            content_type = "application/json" if method == "PUT" else None
        if content_type is not None:
            hdrs.append(("Content-Type", content_type))
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
        if isinstance(body, str):
            body = body.encode("utf-8")
        payload = b""
        if chunks is not None:
            hdrs.append(("Transfer-Encoding", "chunked"))
            payload = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks if c) + b"0\r\n\r\n"
        elif body is not None:
            payload = body
            if content_length is DEFAULT:
                content_length = len(body)
        if content_length is not DEFAULT and content_length is not None:
            hdrs.append(("Content-Length", str(content_length)))
        if raw_body is not None:
            payload = raw_body
        for name, value in (headers or {}).items():
            hdrs = [h for h in hdrs if h[0].lower() != name.lower()]
            if value is not None:
                hdrs.append((name, value))
        head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{n}: {v}\r\n" for n, v in hdrs)
        return self.send(method, path, head.encode("latin-1") + b"\r\n" + payload, check=check)

    def send(self, method, path, data, check=True, keep_open_after=None):
        """Sends the bytes data and reads one response, then reads on to EOF.
        keep_open_after: if set, seconds to wait before reading (the socket
        stays open for writing, the body is not completed)."""
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=self.timeout)
        fp = _Reader(socket.SocketIO(sock, "rb"))
        started = time.monotonic()
        try:
            try:
                sock.sendall(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the server answered early and closed; read its answer
            resp = http.client.HTTPResponse(_FakeSock(fp), method=method)
            resp.begin()
            body = resp.read()
            elapsed = time.monotonic() - started
            try:
                trailing = fp.read()
            except (ConnectionResetError, socket.timeout):
                trailing = b""
            result = Response(method, path, resp.status, resp.reason, resp.headers, body,
                              trailing, list(fp.lines), elapsed)
        finally:
            fp.really_close()
            sock.close()
        if check:
            self.contract.check(result, self.bases)
        return result

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def head(self, path, **kw):
        return self.request("HEAD", path, **kw)

    def put(self, path, body=None, **kw):
        return self.request("PUT", path, body=body, **kw)

    def put_date(self, path, dob, **kw):
        if isinstance(dob, date):
            dob = dob.isoformat()
        return self.put(path, {"dateOfBirth": dob}, **kw)


# ---- the contract: docs/openapi.yaml -----------------------------------------

class Contract:
    _instance = None

    @classmethod
    def get(cls):
        if cls._instance is None:
            cls._instance = cls(OPENAPI)
        return cls._instance

    def __init__(self, path):
        self.doc = yaml.safe_load(Path(path).read_text())
        self.path_item = self.doc["paths"]["/hello/{username}"]
        schemas = self.doc["components"]["schemas"]
        self.message_validator = jsonschema.Draft7Validator(schemas["Message"])
        self.error_validator = jsonschema.Draft7Validator(schemas["Error"])
        self.checked = 0

    def resolve(self, obj):
        while isinstance(obj, dict) and "$ref" in obj:
            ref = obj["$ref"]
            assert ref.startswith("#/"), ref
            node = self.doc
            for part in ref[2:].split("/"):
                node = node[part]
            obj = node
        return obj

    def documented_response(self, method, path, status, bases):
        """The openapi response object for this request, or None when the path
        is not /hello/{username} under one of the bases. Fails when the status
        is not documented for the operation."""
        decoded = urllib.parse.unquote(path.split("?", 1)[0], errors="surrogateescape")
        segment = None
        for base in sorted(bases, key=len, reverse=True):
            b = base.rstrip("/")
            if decoded.startswith(b + "/"):
                rest = decoded[len(b) + 1:]
                if rest and "/" not in rest:
                    segment = rest
                break
        if segment is None:
            return None
        op = self.path_item.get(method.lower())
        if op is None or method.lower() not in ("get", "head", "put", "post", "patch",
                                                 "delete"):
            # Any other method: 405 (docs: "Methods other than GET, HEAD and PUT
            # answer 405").
            responses = {"405": self.doc["components"]["responses"]["MethodNotAllowed"]}
        else:
            responses = op["responses"]
        assert str(status) in responses, (
            f"{method} {path} answered {status}, which docs/openapi.yaml does not document "
            f"for this operation (documented: {sorted(responses)})")
        return self.resolve(responses[str(status)])

    @staticmethod
    def media_type(resp):
        ct = resp.header("Content-Type")
        return ct.split(";")[0].strip().lower() if ct else None

    def check(self, resp, bases=("/hello",)):
        where = f"{resp.method} {resp.path} -> {resp.status}"
        self.checked += 1
        # No client input produces a 500; the only 5xx is the database's 503.
        assert resp.status != 500, f"{where}: a 500 ({resp!r})"
        assert resp.status < 500 or resp.status == 503, f"{where}: unexpected 5xx"
        # Nothing follows the response on the connection.
        assert resp.trailing == b"", f"{where}: bytes after the response: {resp.trailing!r}"
        is_head = resp.method == "HEAD"
        if is_head:
            assert resp.body == b"", f"{where}: a HEAD answer with a body"
        if resp.status == 204:
            assert resp.body == b"", f"{where}: 204 with a body {resp.body!r}"
            assert resp.header("Content-Length") in (None, "0"), where
        if resp.status == 200 or resp.status >= 400:
            assert self.media_type(resp) == "application/json", (
                f"{where}: Content-Type {resp.header('Content-Type')!r}, not application/json "
                f"(body {resp.body[:200]!r})")
        if not is_head:
            if resp.status == 200 and resp.method == "GET":
                self.message_validator.validate(self._json(resp, where))
            if resp.status >= 400:
                self.error_validator.validate(self._json(resp, where))
        documented = self.documented_response(resp.method, resp.path, resp.status, bases)
        if documented is None:
            return
        for name, header in (documented.get("headers") or {}).items():
            header = self.resolve(header)
            value = resp.header(name)
            if header.get("required"):
                assert value is not None, f"{where}: header {name} is missing"
            if value is not None:
                schema = header.get("schema", {})
                if schema.get("type") == "integer":
                    assert re.fullmatch(r"[0-9]+", value), f"{where}: {name}: {value!r}"
                    value = int(value)
                jsonschema.Draft7Validator(schema).validate(value)
        content = documented.get("content")
        if content:
            mt = self.media_type(resp)
            assert mt in content, f"{where}: Content-Type {mt!r} not in {sorted(content)}"
            schema = self.resolve(content[mt].get("schema", {}))
            if not is_head:
                jsonschema.Draft7Validator(schema).validate(self._json(resp, where))
        elif not is_head:
            assert resp.body == b"", f"{where}: documented without content, got {resp.body!r}"

    @staticmethod
    def _json(resp, where):
        try:
            return json.loads(resp.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as e:
            raise AssertionError(f"{where}: body is not JSON ({e}): {resp.body[:300]!r}")


# ---- usernames ---------------------------------------------------------------

class Names:
    """Unique usernames (ASCII letters) from a seeded RNG, so that runs are
    reproducible and every test has users of its own."""

    def __init__(self, seed):
        import random
        self.rng = random.Random(seed)
        self.used = set()

    def new(self, length=10, prefix=""):
        while True:
            name = prefix + "".join(self.rng.choice("abcdefghijklmnopqrstuvwxyz")
                                    for _ in range(length - len(prefix)))
            if name not in self.used and name.lower() not in {u.lower() for u in self.used}:
                self.used.add(name)
                return name


# ---- pinned module, processes and memory (test_flood, test_privileges, test_greedy_clients) ----

def pin_module(directory):
    """A private copy of build/mod_hello.so in directory. A server that loads
    the copy cannot be crashed by a rebuild of build/mod_hello.so while it
    runs (the linker rewrites the file that the children have mapped)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    copy = directory / "mod_hello.so"
    shutil.copy2(MODULE, copy)
    return copy


class PinnedHttpd(Httpd):
    """An Httpd that loads a private copy of the module (see pin_module)."""

    def __init__(self, root, module_copy=None, **kwargs):
        self.module_copy = Path(module_copy) if module_copy else pin_module(Path(root) / "module")
        super().__init__(root, **kwargs)

    def config_text(self):
        return super().config_text().replace(f'"{MODULE}"', f'"{self.module_copy}"')


def child_pids(parent_pid):
    """The pids of the live processes whose parent is parent_pid (httpd's
    children), in ascending order."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == parent_pid and fields[0] != "Z":
            pids.append(int(entry.name))
    return sorted(pids)


def vm_rss_kib(pid):
    """VmRSS of pid in KiB, from /proc/<pid>/status (None if it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None
