"""The read cache (HelloCache on Apache's socache, here shmcb): what it
answers and says (Cache-Status, Age, metrics), read-your-writes under
concurrent GETs and PUTs of the same users, namespaces per database, DELETE,
reads through a database outage, and the configuration errors."""
import datetime
import re
import threading
import time

import pytest

import hellotest as ht

SHMCB = f"LoadModule socache_shmcb_module {ht.MODULES_DIR}/mod_socache_shmcb.so"


def cache_conf(root, max_age=60, stale=300, extra=""):
    return (f"HelloCache \"shmcb:{root}/hello-cache(1048576)\"\n"
            f"HelloCacheMaxAge {max_age}\nHelloCacheStaleIfError {stale}\n{extra}")


def cached_httpd(make_httpd, tmp_path, db, locations=None, start=True, **kw):
    root = tmp_path / "cache"
    root.mkdir(exist_ok=True)
    extra = kw.pop("extra", "")
    conf = cache_conf(root, **kw)
    return make_httpd(start=start, db=db, locations=locations,
                      extra=SHMCB + "\n" + conf + extra)


def metric(server, name):
    text = server.client().get("/hello-metrics", check=False).body.decode()
    values = re.findall(rf'^{name}\{{vhost="[^"]*"\}} (\d+)$', text, re.M)
    assert values, f"{name} missing from the metrics:\n{text[:2000]}"
    return sum(int(v) for v in values)  # over the vhosts


METRICS_LOCATION = "<Location /hello-metrics>\n SetHandler hello-metrics\n</Location>\n"


def test_cache_status_age_and_counters(make_httpd, tmp_path, db, names):
    server = cached_httpd(make_httpd, tmp_path, db, extra=METRICS_LOCATION)
    c = server.client()
    user = names.new()
    today = ht.utc_today()

    assert c.put_date(f"/hello/{user}", "1990-03-04").status == 204
    first = c.get(f"/hello/{user}")
    assert first.status == 200
    assert first.header("Cache-Status") == "mod_hello; fwd=miss; stored"
    assert first.header("Age") is None
    second = c.get(f"/hello/{user}")
    assert second.status == 200 and second.body == first.body
    assert second.header("Cache-Status") == "mod_hello; hit"
    assert second.header("Age") is not None and int(second.header("Age")) <= 2
    assert second.message == ht.expected_message(user, datetime.date(1990, 3, 4), today)
    head = c.head(f"/hello/{user}")
    assert head.header("Cache-Status") == "mod_hello; hit"

    # A write replaces what the cache answers at once.
    assert c.put_date(f"/hello/{user}", "1991-07-08").status == 204
    third = c.get(f"/hello/{user}")
    assert third.message == ht.expected_message(user, datetime.date(1991, 7, 8), today)
    assert third.header("Cache-Status") == "mod_hello; fwd=miss; stored"

    # "Not found" is never cached.
    unknown = names.new()
    for _ in range(2):
        r = c.get(f"/hello/{unknown}")
        assert r.status == 404 and r.header("Cache-Status") == "mod_hello; fwd=miss"
    # Neither are writes: a PUT carries no Cache-Status.
    assert c.put_date(f"/hello/{user}", "1991-07-08").header("Cache-Status") is None

    assert metric(server, "hello_cache_hits_total") == 2
    assert metric(server, "hello_cache_misses_total") == 4
    assert metric(server, "hello_cache_stale_served_total") == 0
    assert metric(server, "hello_cache_store_errors_total") == 0


def test_entries_expire_after_max_age(make_httpd, tmp_path, db, names):
    server = cached_httpd(make_httpd, tmp_path, db, max_age=1, stale=30)
    c = server.client()
    user = names.new()
    assert c.put_date(f"/hello/{user}", "1980-01-02").status == 204
    assert c.get(f"/hello/{user}").header("Cache-Status") == "mod_hello; fwd=miss; stored"
    assert c.get(f"/hello/{user}").header("Cache-Status") == "mod_hello; hit"
    # A change behind the module's back heals within HelloCacheMaxAge.
    db.sql(f"UPDATE hello_users SET date_of_birth = '1980-05-06' WHERE username = '{user}'")
    time.sleep(1.2)
    r = c.get(f"/hello/{user}")
    assert r.header("Cache-Status") == "mod_hello; fwd=stale; stored"
    assert r.message == ht.expected_message(user, datetime.date(1980, 5, 6), ht.utc_today())


def test_delete_removes_the_entry_before_answering(make_httpd, tmp_path, own_db, names):
    own_db.sql((ht.REPO / "sql" / "grants-delete.sql").read_text())
    server = cached_httpd(make_httpd, tmp_path, own_db,
                          locations={"/hello": "HelloAllowDelete On"})
    c = server.client()
    user = names.new()
    assert c.put_date(f"/hello/{user}", "1975-11-12").status == 204
    c.get(f"/hello/{user}")
    assert c.get(f"/hello/{user}").header("Cache-Status") == "mod_hello; hit"
    assert c.request("DELETE", f"/hello/{user}").status == 204
    r = c.get(f"/hello/{user}")
    assert r.status == 404 and r.header("Cache-Status") == "mod_hello; fwd=miss"


def test_two_databases_never_share_entries(make_httpd, tmp_path, db, own_db, names):
    """Two name-based virtual hosts, each with its own database: the same
    username has its own entry in each, in one shared cache."""
    server = cached_httpd(make_httpd, tmp_path, db, start=False)
    for name, database in (("tenant-a.example", db), ("tenant-b.example", own_db)):
        server.extra += (f"\n<VirtualHost *:{server.port}>\n ServerName {name}\n"
                         f" DBDriver mysql\n DBDParams \"{database.dbd_params()}\"\n"
                         f" DBDMin 0\n DBDKeep 2\n DBDMax 10\n"
                         f" <Location /hello>\n  SetHandler hello\n </Location>\n"
                         f"</VirtualHost>\n")
    server.start()
    c = server.client()
    user = names.new()
    dates = {"tenant-a.example": "1960-02-03", "tenant-b.example": "1999-09-10"}
    for host, dob in dates.items():
        r = c.put_date(f"/hello/{user}", dob, headers={"Host": host})
        assert r.status == 204, r
    for _ in range(2):
        for host, dob in dates.items():
            r = c.get(f"/hello/{user}", headers={"Host": host})
            assert r.message == ht.expected_message(
                user, datetime.date.fromisoformat(dob), ht.utc_today()), (host, r)
    assert c.get(f"/hello/{user}", headers={"Host": "tenant-b.example"}).header(
        "Cache-Status") == "mod_hello; hit"
    assert db.date_of_birth(user) == "1960-02-03"
    assert own_db.date_of_birth(user) == "1999-09-10"


def test_reads_through_an_outage(make_httpd, tmp_path, own_db, names):
    """While the database is down, a user whose entry is younger than
    HelloCacheStaleIfError is answered from it, marked stale; unknown users
    and writes get 503; everything recovers without a restart."""
    server = cached_httpd(make_httpd, tmp_path, own_db, max_age=1, stale=30,
                          extra=METRICS_LOCATION)
    c = server.client()
    known, fresh, unknown = names.new(), names.new(), names.new()
    assert c.put_date(f"/hello/{known}", "1970-04-05").status == 204
    assert c.get(f"/hello/{known}").status == 200
    time.sleep(1.2)  # the entry is now older than HelloCacheMaxAge
    own_db.stop()
    try:
        for _ in range(3):
            r = c.get(f"/hello/{known}")
            assert r.status == 200, r
            assert r.header("Cache-Status") == "mod_hello; hit; detail=stale"
            assert int(r.header("Age")) >= 1
            assert r.message == ht.expected_message(known, datetime.date(1970, 4, 5),
                                                    ht.utc_today())
        r = c.get(f"/hello/{unknown}")
        assert r.status == 503 and r.header("Retry-After")
        r = c.put_date(f"/hello/{fresh}", "1980-01-01")
        assert r.status == 503 and r.header("Retry-After")
        # A write that fails leaves the entry as it was: still served.
        r = c.put_date(f"/hello/{known}", "1981-01-01")
        assert r.status == 503
        assert c.get(f"/hello/{known}").status == 200
        assert metric(server, "hello_cache_stale_served_total") == 4
    finally:
        own_db.start()
    ht.wait_until(lambda: c.get(f"/hello/{unknown}", check=False).status == 404, 30,
                  interval=0.5, what="recovery")
    assert c.put_date(f"/hello/{known}", "1982-02-02").status == 204
    r = c.get(f"/hello/{known}")
    assert r.status == 200 and r.header("Cache-Status") == "mod_hello; fwd=miss; stored"
    assert r.message == ht.expected_message(known, datetime.date(1982, 2, 2), ht.utc_today())
    assert own_db.date_of_birth(known) == "1982-02-02"


def test_outage_under_load(make_httpd, tmp_path, own_db, names):
    """MariaDB stops while clients keep reading and writing: known users keep
    getting 200 (from the cache, stale once older than HelloCacheMaxAge),
    unknown users and PUTs get 503 with Retry-After, and once MariaDB is
    back everything answers as before without a restart, every acknowledged
    PUT in the database."""
    server = cached_httpd(make_httpd, tmp_path, own_db, max_age=1, stale=60,
                          extra=METRICS_LOCATION)
    c0 = server.client()
    today = ht.utc_today()
    known = {names.new(): datetime.date(1960, 1, 1) + datetime.timedelta(days=i)
             for i in range(20)}
    for user, dob in known.items():
        assert c0.put_date(f"/hello/{user}", dob.isoformat()).status == 204
        assert c0.get(f"/hello/{user}").status == 200
    writers_users = [[names.new() for _ in range(5)] for _ in range(2)]
    acked = {}          # user -> the date of its last 204
    log = []            # (start, kind, status, retry_after, cache_status, detail)
    lock = threading.Lock()
    done = threading.Event()

    def record(start, kind, r, detail=""):
        with lock:
            log.append((start, kind, r.status, r.header("Retry-After"), r.header("Cache-Status"),
                        detail))

    def read_known(i):
        c = server.client()
        users = sorted(known)
        while not done.is_set():
            u = users[i % len(users)]
            i += 3
            start = time.monotonic()
            r = c.get(f"/hello/{u}", check=False)
            ok = r.status == 200 and r.message == ht.expected_message(u, known[u], today)
            record(start, "known", r, "" if ok or r.status != 200 else f"wrong: {r.body!r}")

    def read_unknown():
        c = server.client()
        while not done.is_set():
            start = time.monotonic()
            record(start, "unknown", c.get(f"/hello/{names.new()}", check=False))
            time.sleep(0.01)

    def write(users):
        c = server.client()
        k = 0
        while not done.is_set():
            u = users[k % len(users)]
            dob = datetime.date(1980, 1, 1) + datetime.timedelta(days=k)
            k += 1
            start = time.monotonic()
            r = c.put_date(f"/hello/{u}", dob.isoformat(), check=False)
            if r.status == 204:
                with lock:
                    acked[u] = dob
            record(start, "put", r)
            time.sleep(0.01)

    threads = ([threading.Thread(target=read_known, args=(i,)) for i in range(3)] +
               [threading.Thread(target=read_unknown)] +
               [threading.Thread(target=write, args=(us,)) for us in writers_users])
    for t in threads:
        t.start()
    try:
        time.sleep(1.5)
        t_stop = time.monotonic()
        own_db.stop()
        t_stopped = time.monotonic()
        time.sleep(3)   # every entry is now older than HelloCacheMaxAge
        t_start = time.monotonic()
        own_db.start()
        ht.wait_until(lambda: c0.get(f"/hello/{names.new()}", check=False).status == 404, 30,
                      interval=0.2, what="recovery")
        t_back = time.monotonic()
        time.sleep(2)
    finally:
        done.set()
        for t in threads:
            t.join(timeout=30)

    def phase(start):
        if start < t_stop:
            return "before"
        if start < t_stopped:
            return "stopping"
        if start < t_start:
            return "down"
        if start < t_back + 1:
            return "starting"
        return "after"

    table = {}
    bad = []
    stale = 0
    for start, kind, status, retry_after, cache_status, detail in log:
        ph = phase(start)
        if kind == "known" and ph == "down":
            stale += cache_status == "mod_hello; hit; detail=stale"
            if not (cache_status or "").startswith("mod_hello; hit"):
                bad.append((ph, kind, status, f"answered with Cache-Status {cache_status}"))
        table.setdefault((ph, kind), {}).setdefault(status, 0)
        table[(ph, kind)][status] += 1
        if detail:
            bad.append((ph, kind, status, detail))
        if status == 503 and not retry_after:
            bad.append((ph, kind, status, "503 without Retry-After"))
        allowed = {
            "known": {200},
            "unknown": {404} if ph in ("before", "after") else
                       {503} if ph == "down" else {404, 503},
            "put": {204} if ph in ("before", "after") else
                   {503} if ph == "down" else {204, 503},
        }[kind]
        if status not in allowed:
            bad.append((ph, kind, status, f"expected {sorted(allowed)}"))
    print("\noutage under load (phase, kind: statuses): " + "; ".join(
        f"{ph} {kind}: {dict(sorted(st.items()))}" for (ph, kind), st in sorted(table.items())) +
          f"; stale answers while down: {stale}")
    assert not bad, bad[:10]
    for ph in ("before", "down", "after"):
        for kind in ("known", "unknown", "put"):
            assert table.get((ph, kind)), f"no {kind} request ran while {ph}"
    assert stale > 0, "no stale answer while the database was down"
    assert metric(server, "hello_cache_stale_served_total") >= stale
    for u, dob in acked.items():
        assert own_db.date_of_birth(u) == dob.isoformat(), f"{u}: acknowledged {dob} lost"
    assert len(acked) == 10


def test_no_stale_entry_after_concurrent_gets_and_puts(make_httpd, tmp_path, db, names):
    """Many threads hammer a few users with GETs and PUTs. Every GET must
    answer a date that was current at some moment during the GET: never one
    that an acknowledged PUT had replaced before the GET started. At the end
    every entry equals the database's row."""
    server = cached_httpd(make_httpd, tmp_path, db)
    users = [names.new() for _ in range(3)]
    base = datetime.date(1990, 1, 1)  # 1990 is not a leap year: 365 distinct birthdays
    today = ht.utc_today()
    msg_to_k = {u: {ht.expected_message(u, base + datetime.timedelta(days=k), today): k
                    for k in range(365)} for u in users}
    puts = {u: [] for u in users}   # (start, end, k)
    gets = {u: [] for u in users}   # (start, end, k)
    counters = {u: 1 for u in users}
    lock = threading.Lock()
    errors = []
    stop = time.monotonic() + 8

    c0 = server.client()
    for u in users:
        assert c0.put_date(f"/hello/{u}", base.isoformat()).status == 204
        puts[u].append((0.0, time.monotonic(), 0))

    def writer(i):
        c = server.client()
        while time.monotonic() < stop:
            u = users[i % len(users)]
            with lock:
                k = counters[u]
                counters[u] += 1
            if k >= 365:
                return
            start = time.monotonic()
            r = c.put_date(f"/hello/{u}", (base + datetime.timedelta(days=k)).isoformat())
            end = time.monotonic()
            if r.status != 204:
                errors.append(r)
            with lock:
                puts[u].append((start, end, k))
            i += 1

    def reader(i):
        c = server.client()
        while time.monotonic() < stop:
            u = users[i % len(users)]
            start = time.monotonic()
            r = c.get(f"/hello/{u}")
            end = time.monotonic()
            if r.status != 200:
                errors.append(r)
                continue
            with lock:
                gets[u].append((start, end, msg_to_k[u][r.message]))
            i += 1

    threads = ([threading.Thread(target=writer, args=(i,)) for i in range(3)] +
               [threading.Thread(target=reader, args=(i,)) for i in range(9)])
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:3]

    checked = 0
    for u in users:
        by_k = {k: (s, e) for s, e, k in puts[u]}
        for g_start, g_end, k in gets[u]:
            p_start, p_end = by_k[k]
            assert p_start < g_end, f"{u}: a GET answered a date not yet sent"
            # Superseded: another PUT started after this one was acknowledged
            # and was itself acknowledged before the GET started.
            later = [k2 for s2, e2, k2 in puts[u] if s2 > p_end and e2 < g_start]
            assert not later, (f"{u}: a GET at {g_start:.4f} answered k={k} (acknowledged "
                               f"{p_end:.4f}), replaced by k={later[0]} before the GET began")
            checked += 1
        # Every entry equals the row: a GET now answers the row's date, from the cache.
        row = db.date_of_birth(u)
        c = server.client()
        c.get(f"/hello/{u}")
        r = c.get(f"/hello/{u}")
        assert r.header("Cache-Status") == "mod_hello; hit"
        assert r.message == ht.expected_message(u, datetime.date.fromisoformat(row), today)
    assert checked > 300, f"only {checked} GETs ran"
    assert sum(len(p) for p in puts.values()) > 100


@pytest.mark.parametrize("directive, complaint", [
    ("HelloCache nosuch:x", "unknown cache provider 'nosuch'; load its module"),
    ("HelloCache \"shmcb:/tmp/x(notanumber)\"", "HelloCache shmcb:/tmp/x(notanumber):"),
    ("HelloCacheMaxAge 0", "HelloCacheMaxAge: '0' is not a whole number from 1 to 86400"),
    ("HelloCacheStaleIfError -1", "HelloCacheStaleIfError: '-1' is not a whole number"),
    ("HelloCacheNamespace a/b", "HelloCacheNamespace: 1 to 128 letters"),
])
def test_bad_cache_directives_fail_the_config_check(make_httpd, directive, complaint):
    server = make_httpd(start=False, extra=SHMCB + "\n" + directive)
    rc, output = server.check_config()
    assert rc != 0 and complaint in output, output


def test_a_node_local_cache_with_a_shared_namespace_warns(make_httpd, tmp_path, db):
    """A HelloCacheNamespace given by hand says that other servers use the
    same database: with shmcb, which they cannot share, the startup says so,
    once per namespace; without the directive it says nothing."""
    warning = "HelloCacheNamespace shared-db with HelloCache"
    vhosts = "".join(
        f"<VirtualHost *:{{port}}>\n ServerName v{i}.example\n</VirtualHost>\n" for i in (1, 2))
    server = cached_httpd(make_httpd, tmp_path, db, start=False,
                          extra="HelloCacheNamespace shared-db\n")
    server.extra += vhosts.format(port=server.port)
    server.start()
    log = server.error_log_text()
    assert log.count(warning) == 1, log
    assert "keeps its entries in this Apache only" in log and "memcache:" in log
    (tmp_path / "plain").mkdir()
    plain = cached_httpd(make_httpd, tmp_path / "plain", db)
    assert "HelloCacheNamespace" not in plain.error_log_text()


def test_a_full_cache_evicts_and_never_fails(make_httpd, tmp_path, own_db):
    """shmcb of 256 KiB and more users than it holds: every GET answers 200,
    the oldest entries make room, and the number that stay gives the bytes
    each cached user takes (printed; docs/performance.md quotes it)."""
    size = 262144
    users = [f"fill{ht.Names(7).new(length=8)}{i:05d}".translate(
        str.maketrans("0123456789", "abcdefghij")) for i in range(5000)]
    for i in range(0, len(users), 500):
        values = ",".join(f"('{u}','1990-01-01')" for u in users[i:i + 500])
        own_db.sql(f"INSERT INTO hello_users (username, date_of_birth) VALUES {values}")
    root = tmp_path / "cache"
    root.mkdir()
    server = make_httpd(db=own_db, extra=(
        f"{SHMCB}\nHelloCache \"shmcb:{root}/hello-cache({size})\"\n{METRICS_LOCATION}"))
    c = server.client()
    for u in users:
        r = c.get(f"/hello/{u}")
        assert r.status == 200 and r.header("Cache-Status").startswith("mod_hello; fwd=miss"), r
    # With the database stopped, a GET stores nothing: the 200s are the
    # users still cached, the 503s those evicted.
    own_db.stop()
    hits = 0
    for u in users:
        r = c.get(f"/hello/{u}")
        assert r.status in (200, 503), r
        hits += r.status == 200
    own_db.start()
    assert 0 < hits < len(users), hits
    assert metric(server, "hello_cache_store_errors_total") == 0
    print(f"\nshmcb({size}) kept {hits} of {len(users)} users: "
          f"{size / hits:.0f} bytes per cached user")


def test_graceful_restart_keeps_read_your_writes(make_httpd, tmp_path, db, names):
    """After `apachectl graceful` the new generation has a new shmcb cache;
    it stores entries again once the old children are gone, and a write
    before the restart is what a GET after it reads."""
    server = cached_httpd(make_httpd, tmp_path, db)
    c = server.client()
    user = names.new()
    assert c.put_date(f"/hello/{user}", "1966-06-06").status == 204
    c.get(f"/hello/{user}")
    assert c.get(f"/hello/{user}").header("Cache-Status") == "mod_hello; hit"
    server.restart("graceful")
    assert c.put_date(f"/hello/{user}", "1967-07-07").status == 204

    def cached_again():
        c.get(f"/hello/{user}")
        return c.get(f"/hello/{user}").header("Cache-Status") == "mod_hello; hit"
    ht.wait_until(cached_again, 20, interval=0.3, what="the new generation storing entries")
    r = c.get(f"/hello/{user}")
    assert r.message == ht.expected_message(user, datetime.date(1967, 7, 7), ht.utc_today())


def _start_memcached(tmp_path, port):
    import os
    import shutil
    import subprocess
    exe = shutil.which("memcached")
    if exe is None:
        pytest.fail("memcached is missing: scripts/install-deps.sh test installs it")
    user = ["-u", "memcache"] if os.geteuid() == 0 else []
    with open(tmp_path / "memcached.log", "a") as log:
        proc = subprocess.Popen([exe, "-l", "127.0.0.1", "-p", str(port), "-U", "0", "-m", "16",
                                 *user], stdout=log, stderr=subprocess.STDOUT)
    ht.wait_until(lambda: _memcached_answers(port), 10, what="memcached")
    proc.port = port
    return proc


def _stop_memcached(proc):
    import signal
    if proc.poll() is None:
        proc.send_signal(signal.SIGCONT)
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def memcached(tmp_path):
    """A memcached of the test's own on a free loopback port."""
    proc = _start_memcached(tmp_path, ht.free_port())
    yield proc
    _stop_memcached(proc)


def _memcached_answers(port):
    import socket
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"version\r\n")
            return s.recv(64).startswith(b"VERSION")
    except OSError:
        return False


MEMCACHE = f"LoadModule socache_memcache_module {ht.MODULES_DIR}/mod_socache_memcache.so"


def test_two_servers_share_memcached_and_survive_it_hanging(make_httpd, db, memcached, names):
    """Two Apache servers share one database and one memcached (HelloCache
    memcache:, one HelloCacheNamespace), as fleet nodes do: an entry filled
    through one is a hit on the other, a write through either invalidates it
    for both. Then memcached is stopped (SIGSTOP: it accepts connections and
    never answers, and apr_memcache has no read timeout): requests that
    were already waiting on it wait, at most a quarter of each child's
    threads (6 of 25 here), and every other
    request is answered from the database; after SIGCONT all is as before."""
    import signal
    conf = (f"{MEMCACHE}\nHelloCache memcache:127.0.0.1:{memcached.port}\n"
            f"HelloCacheNamespace shared-db\n{METRICS_LOCATION}")
    a, b = (make_httpd(db=db, extra=conf) for _ in range(2))
    ca, cb = a.client(), b.client()
    today = ht.utc_today()
    user = names.new()
    assert ca.put_date(f"/hello/{user}", "1966-06-06").status == 204
    assert cb.get(f"/hello/{user}").header("Cache-Status") == "mod_hello; fwd=miss; stored"
    assert ca.get(f"/hello/{user}").header("Cache-Status") == "mod_hello; hit"
    assert cb.put_date(f"/hello/{user}", "1967-07-07").status == 204
    r = ca.get(f"/hello/{user}")
    assert r.message == ht.expected_message(user, datetime.date(1967, 7, 7), today)
    assert r.header("Cache-Status") == "mod_hello; fwd=miss; stored"
    known = {names.new(): datetime.date(1950, 1, 1) + datetime.timedelta(days=i)
             for i in range(10)}
    # Each client also writes a user of its own, cached on both servers
    # before memcached stops: a PUT acknowledged meanwhile must be what
    # both read once memcached answers again.
    own = [names.new() for _ in range(24)]
    acked = {u: datetime.date(1940, 1, 1) for u in own}
    for u, dob in list(known.items()) + list(acked.items()):
        assert ca.put_date(f"/hello/{u}", dob.isoformat()).status == 204
        ca.get(f"/hello/{u}")
        assert cb.get(f"/hello/{u}").header("Cache-Status") == "mod_hello; hit"

    memcached.send_signal(signal.SIGSTOP)
    done = threading.Event()
    answered, wrong = [], []
    lock = threading.Lock()

    def client(i):
        c = a.client()
        c.timeout = 60
        users = sorted(known)
        mine, k = own[i], 0
        while not done.is_set():
            u = users[i % len(users)]
            i += 1
            if i % 5 == 0:
                k += 1
                dob = datetime.date(1941, 1, 1) + datetime.timedelta(days=k)
                r = c.put_date(f"/hello/{mine}", dob.isoformat(), check=False)
                ok = r.status == 204 or (r.status == 503 and r.header("Retry-After"))
                if r.status == 204:
                    with lock:
                        acked[mine] = dob
            else:
                r = c.get(f"/hello/{u}")
                ok = r.status == 200 and r.message == ht.expected_message(u, known[u], today)
            with lock:
                (answered if ok else wrong).append((time.monotonic(), r.status, r.body))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(24)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    try:
        time.sleep(4)
        during = len(answered)
    finally:
        memcached.send_signal(signal.SIGCONT)
        done.set()
        for t in threads:
            t.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a client still waits after SIGCONT"
    assert not wrong, wrong[:5]
    # 24 clients, at most 2 children x 6 calls stuck: 12 or more go on.
    assert during > 200, f"only {during} answers in 4 s with memcached stopped"
    late = [t for t, _, _ in answered if t - t0 > 1]
    assert len(late) > 100, "the requests stopped being answered"
    assert metric(a, "hello_cache_store_errors_total") > 0
    # Nothing acknowledged during the hang is read stale now, from either server.
    for u, dob in acked.items():
        for c in (ca, cb):
            r = c.get(f"/hello/{u}")
            assert r.message == ht.expected_message(u, dob, today), (u, dob, r.body, r.header(
                "Cache-Status"))
    ht.wait_until(lambda: cb.get(f"/hello/{user}").header("Cache-Status") == "mod_hello; hit"
                  and ca.get(f"/hello/{user}").header("Cache-Status") == "mod_hello; hit",
                  30, interval=0.5, what="hits again after memcached came back")
    print(f"\nmemcached stopped for 4 s: {during} requests answered meanwhile by 24 clients")


def test_a_write_refused_by_a_restarted_memcached_is_made_again(make_httpd, db, tmp_path, names):
    """After a memcached restart each server's child finds its pooled
    connection broken on its next call and then leaves memcached alone for
    5 s (apr_memcache). Server B finds out first, server A 3 s later: for a
    while B uses memcached again while A cannot reach it. A GET through B
    fills the old date meanwhile; a PUT through A commits and its
    invalidation is refused. B answers the old date from the cache (the
    hole) until A reaches memcached again: A's next request makes the
    invalidation again, and B reads the new date. Without that, B would
    answer the old date for HelloCacheMaxAge (60 s)."""
    import signal
    mc = _start_memcached(tmp_path, ht.free_port())
    try:
        # One child per server: a second one would have its own view of memcached.
        conf = (f"{MEMCACHE}\nHelloCache memcache:127.0.0.1:{mc.port}\n"
                f"HelloCacheNamespace shared-db\nServerLimit 1\nMaxRequestWorkers 25\n"
                f"MinSpareThreads 1\nMaxSpareThreads 25\n")
        a, b = (make_httpd(db=db, extra=conf) for _ in range(2))
        ca, cb = a.client(), b.client()
        today = ht.utc_today()
        user, other = names.new(), names.new()
        assert ca.put_date(f"/hello/{user}", "1966-06-06").status == 204
        assert cb.get(f"/hello/{user}").header("Cache-Status") == "mod_hello; fwd=miss; stored"
        assert ca.get(f"/hello/{user}").header("Cache-Status") == "mod_hello; hit"

        mc.send_signal(signal.SIGKILL)
        mc.wait(timeout=10)
        mc = _start_memcached(tmp_path, mc.port)   # empty, same address
        t0 = time.monotonic()
        assert cb.get(f"/hello/{other}", check=False).status == 404   # B: broken, 5 s alone
        time.sleep(3)
        assert ca.get(f"/hello/{other}", check=False).status == 404   # A: broken, 5 s alone
        time.sleep(max(0, t0 + 5.5 - time.monotonic()))
        # B reaches memcached again, A does not yet.
        r = cb.get(f"/hello/{user}")
        assert r.header("Cache-Status") == "mod_hello; fwd=miss; stored", r.headers
        assert ca.put_date(f"/hello/{user}", "1977-07-07").status == 204
        assert time.monotonic() < t0 + 7.5, "too slow to play the window out"
        r = cb.get(f"/hello/{user}")
        assert r.header("Cache-Status") == "mod_hello; hit", "the window was not reproduced"
        assert r.message == ht.expected_message(user, datetime.date(1966, 6, 6), today)
        assert "until this process reaches the cache again" in a.error_log_text()

        time.sleep(max(0, t0 + 3 + 5.5 - time.monotonic()))
        assert ca.get(f"/hello/{other}", check=False).status == 404   # A's next request
        r = cb.get(f"/hello/{user}")
        assert r.message == ht.expected_message(user, datetime.date(1977, 7, 7), today), \
            (r.headers, r.message)
        assert r.header("Cache-Status") == "mod_hello; fwd=miss; stored"
    finally:
        _stop_memcached(mc)


def test_servers_configured_differently_share_memcached_keys(make_httpd, tmp_path, db, memcached,
                                                             names):
    """Server A has a node-local shmcb before its memcache (its main server
    has shmcb, its virtual host memcache); server B has memcache only. Both
    give the database one HelloCacheNamespace, so they must use the same
    keys in memcached whatever else each configures (an earlier version
    named the provider's namespace by the order of HelloCache lines, and A's
    entries were never B's hits). A shared namespace on memcache draws no
    node-local warning."""
    shared = (f"HelloCache memcache:127.0.0.1:{memcached.port}\n"
              f"HelloCacheNamespace shared-db\n")
    (tmp_path / "a").mkdir()
    a = make_httpd(start=False, db=db,
                   extra=f"{SHMCB}\n{MEMCACHE}\n{cache_conf(tmp_path / 'a')}")
    a.extra += (f"<VirtualHost *:{a.port}>\n ServerName a.example\n {shared}"
                f"</VirtualHost>\n")
    a.start()
    b = make_httpd(db=db, extra=f"{MEMCACHE}\n{shared}")
    ca, cb = a.client(), b.client()
    user = names.new()
    assert cb.put_date(f"/hello/{user}", "1958-08-08").status == 204
    assert ca.get(f"/hello/{user}").header("Cache-Status") == "mod_hello; fwd=miss; stored"
    assert cb.get(f"/hello/{user}").header("Cache-Status") == "mod_hello; hit"
    assert ca.put_date(f"/hello/{user}", "1959-09-09").status == 204
    r = cb.get(f"/hello/{user}")
    assert r.header("Cache-Status") == "mod_hello; fwd=miss; stored"
    assert r.message == ht.expected_message(user, datetime.date(1959, 9, 9), ht.utc_today())
    for server in (a, b):
        assert "keeps its entries in this Apache only" not in server.error_log_text()


def test_a_shared_cache_under_prefork_warns(make_httpd, db, memcached):
    """prefork has one thread per process, so the limit on calls waiting
    on a hung memcached never holds anyone back: the startup says so. The
    event MPM's servers above do not get the warning."""
    import re as _re
    warning = "thread(s) per process (the prefork MPM?)"
    conf = f"{MEMCACHE}\nHelloCache memcache:127.0.0.1:{memcached.port}\n"
    server = make_httpd(start=False, db=db, extra=conf)
    event_text = server.config_text
    server.config_text = lambda: _re.sub(
        r"^ThreadsPerChild.*$", "", event_text().replace(
            "LoadModule mpm_event_module   {0}/mod_mpm_event.so".format(ht.MODULES_DIR),
            "LoadModule mpm_prefork_module {0}/mod_mpm_prefork.so".format(ht.MODULES_DIR)),
        flags=_re.M)
    server.start()
    assert server.client().put_date("/hello/preforkuser", "1960-01-01").status == 204
    log = server.error_log_text()
    assert log.count(warning) == 1, log[-2000:]
    event = make_httpd(db=db, extra=conf)
    assert warning not in event.error_log_text()
