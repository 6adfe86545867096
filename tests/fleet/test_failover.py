"""Failover under load: a GET/PUT mix goes through the front balancer while,
one after the other,

  (1) a Galera node is killed (kill -9), left down, started again: it rejoins
      by IST, and the cluster is back to wsrep_cluster_size=3;
  (2) an Apache node is killed (kill -9 of its whole process group), left
      down, started again;
  (3) every Apache node is deployed with a new build, one at a time, by
      fleet/fleet-deploy: the member is disabled in the balancer-manager
      (and the front has no request in flight on it) before scripts/deploy
      --server-root runs, and enabled again after its checks.

The load: LOAD_THREADS Python threads, each on one keep-alive connection to
the front; a PUT of a fresh user (a quarter of the requests) is read back at
once through the front (whichever node answers: read-your-writes); the rest
are GETs of seeded users whose answer is known. A request that meets a
connection closed before any byte of the answer is retried once (GET and
PUT are idempotent); a 5xx, a second failure or a timeout is a failed
request.

Per event: requests, failed requests (fraction; goal below 0.1%), failed
requests sent after the balancer had noticed (goal 0), how long until the
balancer noticed, until the failed part was back, the longest request.
At the end every acknowledged PUT must be on every Galera node (each asked
directly) with its date.

Run: /usr/bin/python3 -m pytest -q -s tests/fleet   (make test-fleet)
"""
import random
import re
import threading
import time

import fleetlib as fl
import hellotest as ht

LOAD_THREADS = 4
SEEDED_USERS = 100
WARMUP = 3.0            # seconds of load before the first event
GALERA_DOWN = 5.0       # seconds a killed Galera node stays down
APACHE_DOWN = 3.0       # seconds a killed Apache node stays down
SETTLE = 2.0            # seconds of load after each event has recovered
GOAL = 0.001            # failed fraction per event


class Event:
    def __init__(self, name, member):
        self.name = name
        self.member = member        # the balancer member it takes out
        self.t0 = time.monotonic()
        self.t_end = None
        self.marks = {}             # name -> monotonic time
        self.notes = []

    def mark(self, what):
        self.marks[what] = time.monotonic()

    def since(self, what, start=None):
        t = self.marks.get(what)
        if t is None:
            return None
        return t - (self.t0 if start is None else self.marks[start])


def wait_for(what, predicate, timeout, interval=0.1):
    deadline = time.monotonic() + timeout
    while True:
        v = predicate()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def test_failover_under_load(fleet, tmp_path):
    t_test = time.monotonic()
    rng = random.Random(20261126)

    # A build to roll out in event 3 (its own tag, so it differs), made now.
    built = {}
    builder = threading.Thread(
        target=lambda: built.setdefault("so", fl.build_module(tmp_path / "build", "rollout")),
        daemon=True)
    builder.start()

    # Users the load reads, with known dates.
    seeded = [(f"fltseed{fl.letters(i, 2)}", fl.random_dob(rng)) for i in range(SEEDED_USERS)]
    fleet.sql(1, "INSERT INTO hello_users (username, date_of_birth) VALUES " + ", ".join(
        f"('{u}', '{d.isoformat()}')" for u, d in seeded) +
        " ON DUPLICATE KEY UPDATE date_of_birth = VALUES(date_of_birth)")

    stop_load, stop_monitor = threading.Event(), threading.Event()
    monitor = fl.Monitor(fleet, stop_monitor)
    loads = [fl.LoadThread(i, *fleet.front, seeded, stop_load) for i in range(LOAD_THREADS)]
    events = []
    web_logs0 = {n: len(_read(fleet.web_dir(n) / "error.log")) for n in
                 range(1, fleet.web_nodes + 1)}
    try:
        monitor.start()
        for t in loads:
            t.start()
        time.sleep(WARMUP)
        t_load = time.monotonic() - WARMUP

        # ---- (1) kill -9 of the Galera node under Apache node 2 ----------------
        g = fleet.web_db(2)
        ev = Event(f"kill -9 galera{g} (under web2)", fleet.member(2))
        events.append(ev)
        log_mark = len(_read(fleet.db_dir(g) / "error.log"))
        fleet.ctl("galera", "kill", g)
        ev.mark("killed")
        survivor = 1 if g != 1 else 3
        wait_for("the survivors to evict the killed node", lambda: _size(fleet, survivor) ==
                 fleet.db_nodes - 1, 30, interval=0.2)
        ev.mark("evicted")
        time.sleep(max(0.0, GALERA_DOWN - (time.monotonic() - ev.t0)))
        ev.mark("restart")
        fleet.ctl("galera", "start", g)          # waits until Synced
        ev.mark("synced")
        wait_for("wsrep_cluster_size=3 and Synced on every node", fleet.cluster_whole, 60,
                 interval=0.2)
        ev.mark("rejoined")
        log = _read(fleet.db_dir(g) / "error.log")[log_mark:]
        ist = re.search(r"Receiving IST: (\d+) writesets", log)
        ev.notes.append(f"rejoined by {'IST (' + ist.group(1) + ' write-sets)' if ist else 'SST'}")
        ev.ist = bool(ist) and "rsync SST completed on joiner" not in log
        wait_for(f"{ev.member} usable in the balancer",
                 lambda: fl.usable(fleet.members()[ev.member][0]), 30)
        ev.mark("back")
        time.sleep(SETTLE)
        ev.t_end = time.monotonic()

        # ---- (2) kill -9 of Apache node 1 ---------------------------------------
        ev = Event("kill -9 web1", fleet.member(1))
        events.append(ev)
        fleet.ctl("web", "kill", 1)
        ev.mark("killed")
        time.sleep(APACHE_DOWN)
        ev.mark("restart")
        fleet.ctl("web", "start", 1)
        ev.mark("started")
        wait_for(f"{ev.member} usable in the balancer",
                 lambda: fl.usable(fleet.members()[ev.member][0]), 30)
        ev.mark("back")
        time.sleep(SETTLE)
        ev.t_end = time.monotonic()

        # ---- (3) rolling deploy, each node drained first ------------------------
        builder.join(timeout=180)
        assert "so" in built, "the build for the rollout failed (see the builder thread)"
        so = built["so"]
        ev = Event("rolling deploy (fleet/fleet-deploy)", None)
        events.append(ev)
        proc = fleet_deploy(fleet, so)
        ev.mark("deployed")
        ev.deploy = proc
        ev.notes += [ln for ln in proc.stderr.splitlines()
                     if "back in the balancer" in ln or "disabled in the balancer" in ln]
        time.sleep(SETTLE)
        ev.t_end = time.monotonic()
    finally:
        stop_load.set()
        for t in loads:
            t.join(timeout=30)
        stop_monitor.set()
        monitor.join(timeout=10)
    t_unloaded = time.monotonic()

    # ---- what the clients saw ----------------------------------------------------
    results = sorted((r for t in loads for r in t.results), key=lambda r: r.t_sent)
    acked = [a for t in loads for a in t.acked]
    stale = [s for t in loads for s in t.stale]
    wrong = [w for t in loads for w in t.wrong]
    unexpected = [u for t in loads for u in t.unexpected]
    retried = [r for r in results if r.retried]
    per_node = {}
    for r in results:
        per_node[r.node] = per_node.get(r.node, 0) + 1

    def window(a, b):
        return [r for r in results if a <= r.t_sent < b]

    rows = []
    for ev in events:
        rs = window(ev.t0, ev.t_end)
        failed = [r for r in rs if r.failed]
        if ev.member:
            ev.t_noticed = monitor.first(ev.member, lambda s: not fl.usable(s), ev.t0)
        else:
            ev.t_noticed = ev.t0    # drained before anything happened to it
        after = [r for r in failed if ev.t_noticed is not None and r.t_sent > ev.t_noticed]
        ev.rs, ev.failed, ev.after = rs, failed, after
        rows.append(ev)
    calm = [r for r in results if not any(ev.t0 <= r.t_sent < ev.t_end for ev in events)]
    calm_failed = [r for r in calm if r.failed]

    # ---- what the database holds ----------------------------------------------------
    final_view = fleet.cluster_view()
    missing = {}
    for n in range(1, fleet.db_nodes + 1):
        stored = dict(fleet.sql(n, "SELECT username, DATE_FORMAT(date_of_birth, '%Y-%m-%d') "
                                   "FROM hello_users WHERE username LIKE 'flt%'"))
        missing[n] = [(u, d.isoformat(), stored.get(u)) for u, d, _ in acked
                      if stored.get(u) != d.isoformat()]
    crashes = {n: [ln for ln in _read(fleet.web_dir(n) / "error.log")[web_logs0[n]:]
                   .splitlines() if ht.CRASH_RE.search(ln)]
               for n in range(1, fleet.web_nodes + 1)}
    front_access = _read(fleet.dir / "front" / "access.log").splitlines()
    front_5xx = [ln for ln in front_access if re.search(r'" 5\d\d ', ln)]
    loaded = [l for l in fleet.web_dir(1).joinpath("hello.load").read_text().split()]

    # ---- the report (before the verdict, so a failed run shows it too) ------------------
    def rel(t, ev):
        return "-" if t is None else f"{t - ev.t0:.2f} s"

    dur = t_unloaded - t_load
    report = [
        "failover under load: results",
        f"  load: {LOAD_THREADS} keep-alive threads through the front "
        f"http://{fleet.front[0]}:{fleet.front[1]}: {len(results)} requests in {dur:.1f} s "
        f"({len(results) / dur:.0f}/s), answered by {per_node}; retried once (connection closed "
        f"before any byte): {len(retried)}; failed: {sum(r.failed for r in results)}",
        f"  PUTs acknowledged: {len(acked)}; read back at once through the front and not seen "
        f"(stale): {len(stale)}; seeded users greeted wrong: {len(wrong)}; unexpected 4xx: "
        f"{len(unexpected)}",
    ]
    for ev in rows:
        rs, failed = ev.rs, ev.failed
        frac = len(failed) / len(rs) if rs else 0.0
        lat = [r.latency for r in rs]
        report.append(f"  [{ev.name}] {ev.t_end - ev.t0:.1f} s: {len(rs)} requests, "
                      f"{len(failed)} failed ({frac:.3%}), {sum(r.retried for r in rs)} retried; "
                      f"failed after the balancer noticed: {len(ev.after)}; longest request "
                      f"{max(lat):.2f} s" if lat else f"  [{ev.name}] no requests")
        if ev.member:
            bits = [f"balancer noticed {rel(ev.t_noticed, ev)}"]
            if failed:
                bits.append(f"failed requests sent {failed[0].t_sent - ev.t0:.2f}.."
                            f"{failed[-1].t_sent - ev.t0:.2f} s")
            for k in ("evicted", "restart", "synced", "rejoined", "started", "back"):
                if k in ev.marks:
                    bits.append(f"{k} {ev.since(k):.2f} s")
            if "rejoined" in ev.marks:
                bits.append(f"rejoin took {ev.since('rejoined', 'restart'):.2f} s after the "
                            "restart")
            if "back" in ev.marks:
                bits.append(f"back in the balancer {ev.since('back', 'restart'):.2f} s after the "
                            "restart")
            report.append("      " + "; ".join(bits))
        for note in ev.notes:
            report.append("      " + note)
        if failed:
            kinds = {}
            for r in failed:
                k = f"{r.method} {r.status or r.error.split('(')[0]}"
                kinds[k] = kinds.get(k, 0) + 1
            report.append(f"      failures: {kinds}")
    report += [
        f"  outside the events: {len(calm)} requests, {len(calm_failed)} failed",
        f"  every acknowledged PUT on every Galera node: missing or wrong per node "
        f"{ {n: len(m) for n, m in missing.items()} }",
        f"  cluster at the end: {final_view}",
        f"  front access.log 5xx: {len(front_5xx)}; crashes in the Apache error logs: "
        f"{ {n: len(c) for n, c in crashes.items()} }; web1 runs {loaded[-1].split('/')[-1]}",
        f"  monitor: {len(monitor.changes)} balancer state changes seen, {monitor.errors} "
        "polls unanswered",
        f"  test time {time.monotonic() - t_test:.1f} s (fleet start {fleet.up_seconds:.1f} s "
        "not included)",
    ]
    print("\n" + "\n".join(report))
    for ev in rows:
        for r in ev.failed[:5]:
            print(f"    {ev.name}: +{r.t_sent - ev.t0:.2f}s {r.method} {r.path} -> {r.status} "
                  f"{r.body[:80]} {r.error or ''} (node {r.node})")

    # ---- the verdict ------------------------------------------------------------------
    assert events[0].ist, "the Galera node did not rejoin by IST"
    assert fleet.cluster_whole(), f"the cluster is not whole at the end: {final_view}"
    assert events[2].deploy.returncode == 0, \
        f"fleet/fleet-deploy failed:\n{events[2].deploy.stdout}{events[2].deploy.stderr}"
    assert so.name and loaded[-1].endswith(f"mod_hello-{_sha16(so)}.so"), loaded
    for ev in rows:
        assert ev.rs, f"{ev.name}: no request during the event"
        if ev.member:
            assert ev.t_noticed is not None, f"{ev.name}: the balancer never took it out"
        assert len(ev.failed) / len(ev.rs) < GOAL, \
            f"{ev.name}: {len(ev.failed)} of {len(ev.rs)} requests failed"
        assert not ev.after, f"{ev.name}: {len(ev.after)} requests failed after the balancer " \
                             "had noticed"
    assert not rows[2].failed, "requests failed during the drained rolling deploy"
    assert not calm_failed, f"{len(calm_failed)} requests failed outside the events"
    assert not stale, f"{len(stale)} reads did not see the thread's own acknowledged PUT: " \
                      f"{[(g.path, g.status, g.body) for g, _ in stale[:5]]}"
    assert not wrong and not unexpected, (wrong[:3], unexpected[:3])
    assert acked, "no PUT was acknowledged"
    for n, m in missing.items():
        assert not m, f"galera{n}: {len(m)} acknowledged PUTs missing or wrong: {m[:5]}"
    assert not any(crashes.values()), crashes


def fleet_deploy(fleet, so):
    import subprocess
    proc = subprocess.run([fleet.script("fleet-deploy"), str(so)], env=fleet._env(),
                          capture_output=True, text=True, timeout=300)
    return proc


def _size(fleet, n):
    try:
        return int(fleet.status(n, "wsrep_cluster_size")["wsrep_cluster_size"])
    except (AssertionError, KeyError, ValueError):
        return None


def _sha16(path):
    import hashlib
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def _read(path):
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""
