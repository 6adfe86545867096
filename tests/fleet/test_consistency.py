"""Consistency across the Apache nodes of a fleet (each pooled to its own
Galera node):

- read-your-writes: a PUT acknowledged by Apache node 1 is seen by an
  immediate GET on Apache node 2 (directly, not through the balancer),
  every time, because node 2's pool sets wsrep_sync_wait = 1 (DBDInitSQL);
  the same through node 2's measurement listener without it shows what
  the setting prevents;
- the price: GET latency on node 2 with and without wsrep_sync_wait, idle
  and while node 1 is writing;
- concurrent writes of one user through both nodes: Galera certification
  conflicts (ER_LOCK_DEADLOCK 1213) are retried by mod_hello, so no 5xx
  reaches the client, and every node ends on one of the written dates, with
  one and with two writers per node (mod_hello waits 1, 2, 3 ms between its
  attempts, so a retry does not lose again to the write that beat it).

Run: /usr/bin/python3 -m pytest -q -s tests/fleet   (make test-fleet)
"""
import re
import threading
import time
from datetime import date, timedelta

import pytest

import fleetlib as fl

RYW_ROUNDS = 500        # PUT on node 1, GET on node 2, per variant
LATENCY_GETS = 600      # GETs per variant (sync / no sync), per phase
WRITE_ROUNDS = 200      # rounds; every writer PUTs once per round, all at once


def _stats(lat):
    return (f"p50 {fl.ms(fl.percentile(lat, 50))}, p90 {fl.ms(fl.percentile(lat, 90))}, "
            f"p99 {fl.ms(fl.percentile(lat, 99))}, mean {fl.ms(sum(lat) / len(lat))}")


def _ryw(fleet, put_client, get_client, prefix, rounds, rng):
    """PUT on one node, GET at once on another. Half the rounds write a fresh
    user (a stale read is a 404), half rewrite one user with a new date (a
    stale read is the previous date). Returns (stale reads, failures, the
    GETs)."""
    stale, failures, gets = [], [], []
    last = None
    for i in range(rounds):
        if i % 2 == 0:
            user = prefix + fl.letters(i, 4)
            dob = fl.random_dob(rng)
        else:
            user = prefix + "same"
            dob = fl.random_dob(rng)
            while dob == last:
                dob = fl.random_dob(rng)
            last = dob
        p = put_client.put(user, dob)
        if p.status != 204:
            failures.append(f"PUT {user}: {p.status} {p.body} {p.error}")
            continue
        g = get_client.get(user)
        gets.append(g)
        expected = fl.greeting(user, dob)
        if g.status is None or g.status >= 500:
            failures.append(f"GET {user}: {g.status} {g.body} {g.error}")
        elif (g.status, g.body) != (200, expected):
            stale.append(f"{user}: wrote {dob}, read {g.status} {g.body}")
    return stale, failures, gets


def test_read_your_writes_across_nodes(fleet):
    import random
    rng = random.Random(7)
    assert fleet.web_nodes >= 2
    n1, n2 = fl.Client(fleet.web_addr(1), fleet.web_port()), \
        fl.Client(fleet.web_addr(2), fleet.web_port())
    n2_nosync = fl.Client(fleet.web_addr(2), fleet.web_port(sync=False))
    try:
        db2 = fleet.web_db(2)
        t0 = time.monotonic()
        c0 = _causal_reads(fleet, db2)
        stale, failures, ryw_gets = _ryw(fleet, n1, n2, "rywsync", RYW_ROUNDS, rng)
        c1 = _causal_reads(fleet, db2)
        stale_nosync, failures_nosync, ryw_gets_nosync = _ryw(fleet, n1, n2_nosync, "rywnosync",
                                                              RYW_ROUNDS, rng)
        c2 = _causal_reads(fleet, db2)
        t_ryw = time.monotonic() - t0

        # -- what the shared cache buys: GETs of one known user on node 2,
        #    answered from memcached (web2:8080) and from the database
        #    without the cache and without sync_wait (web2:8081),
        #    interleaved; idle, then while node 1 writes other users.
        user, dob = "rywlatency", date(1990, 5, 17)
        assert n1.put(user, dob).status == 204
        expected = fl.greeting(user, dob)
        phases = {}
        for phase in ("idle", "node 1 writing"):
            stop = threading.Event()
            writer_count = [0]

            def writer():
                c = fl.Client(fleet.web_addr(1), fleet.web_port())
                wrng = random.Random(11)
                i = 0
                while not stop.is_set():
                    c.put("rywwriter" + fl.letters(i % 5000, 4), fl.random_dob(wrng))
                    i += 1
                writer_count[0] = i
                c.close()
            th = threading.Thread(target=writer, daemon=True)
            if phase != "idle":
                th.start()
                time.sleep(0.3)
            sync_lat, nosync_lat, bad = [], [], []
            for i in range(LATENCY_GETS):
                order = (n2, n2_nosync) if i % 2 == 0 else (n2_nosync, n2)
                for c in order:
                    r = c.get(user)
                    if (r.status, r.body) != (200, expected):
                        bad.append((r.status, r.body, r.error))
                    (sync_lat if c is n2 else nosync_lat).append(r.latency)
            stop.set()
            if th.is_alive():
                th.join(timeout=20)
            phases[phase] = (sync_lat, nosync_lat, bad, writer_count[0])
    finally:
        for c in (n1, n2, n2_nosync):
            c.close()

    report = [
        "read-your-writes across Apache nodes (PUT on web1, GET at once on web2, direct):",
        f"  with wsrep_sync_wait=1 (web2:{fleet.web_port()}): {RYW_ROUNDS} rounds, "
        f"stale reads {len(stale)}, failures {len(failures)}",
        f"  without (web2:{fleet.web_port(sync=False)}, measurement only): {RYW_ROUNDS} rounds, "
        f"stale reads {len(stale_nosync)}, failures {len(failures_nosync)}",
        f"  ({t_ryw:.1f} s for both; wsrep_causal_reads on galera{db2} grew by {c1 - c0} and "
        f"{c2 - c1}: the sync_wait listener's SELECTs wait for the cluster, the other's do not)",
        f"  web2:{fleet.web_port()}'s GETs after each PUT, Cache-Status: {_outcomes(ryw_gets)} "
        "(the PUT on web1 invalidated the shared entry, so each one read the database)",
        "  what wsrep_sync_wait costs a GET just after a write (both read the database): "
        f"sync_wait=1 {_stats([g.latency for g in ryw_gets])}; "
        f"sync_wait=0 {_stats([g.latency for g in ryw_gets_nosync])}",
        "GET latency on web2 (client-side, keep-alive, one known user), answered from the "
        "shared memcached vs from the database (no cache, no sync_wait):",
    ]
    for phase, (s, n, bad, writes) in phases.items():
        report.append(f"  {phase}{f' ({writes} PUTs meanwhile)' if writes else ''}:")
        report.append(f"    cache:    {_stats(s)}")
        report.append(f"    database: {_stats(n)}")
        report.append(f"    saved: p50 {fl.ms(fl.percentile(n, 50) - fl.percentile(s, 50))}, "
                      f"mean {fl.ms(sum(n) / len(n) - sum(s) / len(s))}; wrong answers {len(bad)}")
    if stale_nosync:
        report.append("  stale without sync_wait, e.g.: " + "; ".join(stale_nosync[:3]))
    print("\n" + "\n".join(report))

    assert not failures and not failures_nosync, (failures + failures_nosync)[:10]
    # The setting is in force on web2:8080 (DBDInitSQL) and not on web2:8081
    # (the health checks, once a second, also read through web2:8080).
    assert c1 - c0 >= RYW_ROUNDS, f"wsrep_causal_reads grew by {c1 - c0} for {RYW_ROUNDS} GETs"
    assert c2 - c1 < RYW_ROUNDS // 10, f"wsrep_causal_reads grew by {c2 - c1} without sync_wait"
    assert not stale, f"{len(stale)} stale reads with wsrep_sync_wait=1: {stale[:10]}"
    answered = [g.cache for g in ryw_gets if not (g.cache or "").startswith("mod_hello; fwd=")]
    assert not answered, f"GETs after a PUT answered from the cache: {answered[:5]}"
    assert all(g.cache is None for g in ryw_gets_nosync), "the measurement listener has a cache"
    for phase, (_, _, bad, _) in phases.items():
        assert not bad, f"{phase}: wrong answers {bad[:5]}"


def _metric(fleet, n, name):
    c = fl.Client(fleet.web_addr(n), fleet.web_port())
    try:
        r = c.request("GET", "/hello-metrics")
    finally:
        c.close()
    values = re.findall(rf'^{name}\{{vhost="[^"]*"\}} (\d+)$', r.body, re.M)
    assert values, f"{name} missing from web{n}'s metrics: {r.status} {r.body[:500]}"
    return sum(int(v) for v in values)  # over the vhosts


def _outcomes(results):
    counts = {}
    for r in results:
        key = r.cache.split(";", 1)[1].strip() if r.cache else "none"
        counts[key] = counts.get(key, 0) + 1
    return counts


def _contention(fleet, user, writers_per_node, rounds):
    """writers_per_node threads on each of web1 and web2 PUT one user, all
    released together every round, each with dates of its own. Returns what
    happened, printed."""
    writers = [(n, k) for n in (1, 2) for k in range(writers_per_node)]
    barrier = threading.Barrier(len(writers))
    base = date(1950, 1, 1)
    written = {}            # date -> (node, writer, round)
    results = {w: [] for w in writers}
    reads = {1: [], 2: []}  # a reader on each node GETs the user all along
    stop = threading.Event()
    for i, (n, k) in enumerate(writers):
        for rnd in range(rounds):
            written[base + timedelta(days=i * 1000 + rnd)] = (n, k, rnd)

    def run(i, n, k):
        c = fl.Client(fleet.web_addr(n), fleet.web_port())
        try:
            for rnd in range(rounds):
                try:
                    barrier.wait(timeout=30)
                except threading.BrokenBarrierError:
                    return
                results[(n, k)].append(c.put(user, base + timedelta(days=i * 1000 + rnd)))
        finally:
            c.close()

    def read(n):
        c = fl.Client(fleet.web_addr(n), fleet.web_port())
        try:
            while not stop.is_set():
                reads[n].append(c.get(user))
        finally:
            c.close()

    before = fleet.conflicts()
    logs_before = {n: len(_read(fleet.web_dir(n) / "error.log")) for n in (1, 2)}
    t0 = time.monotonic()
    threads = [threading.Thread(target=run, args=(i, n, k), daemon=True)
               for i, (n, k) in enumerate(writers)]
    readers = [threading.Thread(target=read, args=(n,), daemon=True) for n in (1, 2)]
    for t in threads + readers:
        t.start()
    for t in threads:
        t.join(timeout=120)
    elapsed = time.monotonic() - t0
    stop.set()
    for t in readers:
        t.join(timeout=30)
    assert not any(t.is_alive() for t in threads), "a writer hung"
    after = fleet.conflicts()

    all_results = [r for rs in results.values() for r in rs]
    statuses = {}
    for r in all_results:
        statuses[r.status] = statuses.get(r.status, 0) + 1
    cert = {n: after[n][0] - before[n][0] for n in after}
    bf = {n: after[n][1] - before[n][1] for n in after}

    # Every node holds the same final date, one of those written.
    finals = {}
    for n in range(1, fleet.db_nodes + 1):
        rows = fleet.sql(n, "SELECT DATE_FORMAT(date_of_birth, '%Y-%m-%d') FROM hello_users "
                            f"WHERE username = '{user}'")
        finals[n] = rows[0][0] if rows else None
    final = date.fromisoformat(finals[1]) if finals[1] else None
    # Each node twice: the first GET may fill the shared entry, the second
    # must then be answered from it, with the row's date. A child whose
    # connection to memcached broke (an earlier test restarts it) fails once
    # and leaves memcached alone for 5 s (apr_memcache): then again.
    gets = {}
    deadline = time.monotonic() + 20
    while True:
        gets = {}
        for n in (1, 2, 1, 2):
            c = fl.Client(fleet.web_addr(n), fleet.web_port())
            gets.setdefault(n, []).append(c.get(user))
            c.close()
        if not any("cache-error" in (g.cache or "") for gs in gets.values() for g in gs) or \
                time.monotonic() > deadline:
            break
        time.sleep(1)
    new_log = {n: _read(fleet.web_dir(n) / "error.log")[logs_before[n]:] for n in (1, 2)}
    exhausted = {n: len(re.findall(r"upsert failed \(mysql driver, error 1213\)", new_log[n]))
                 for n in (1, 2)}
    lat = [r.latency for r in all_results]
    out = dict(writers=writers, results=all_results, statuses=statuses, cert=cert, bf=bf,
               conflicts=sum(cert.values()) + sum(bf.values()), finals=finals, final=final,
               written=written, gets=gets, exhausted=exhausted, reads=reads,
               bad=[r for r in all_results if r.status != 204])
    outcomes = _outcomes(reads[1] + reads[2])
    print("\n" + "\n".join([
        f"concurrent writes of one user ({user}): {len(writers)} writers ({writers_per_node} on "
        f"each of web1, web2), {rounds} rounds, all writers released together each round:",
        f"  {len(all_results)} PUTs in {elapsed:.1f} s; statuses {statuses}",
        f"  certification conflicts (status deltas): wsrep_local_cert_failures {cert}, "
        f"wsrep_local_bf_aborts {bf}: {out['conflicts']} in all, each answered 1213 to "
        "mod_hello and run again by it",
        f"  PUTs that lost all of mod_hello's 4 attempts (503, 'upsert failed (mysql driver, "
        f"error 1213)' in the error log): {exhausted}",
        f"  PUT latency: {_stats(lat)}, max {fl.ms(max(lat))}",
        f"  final date on each Galera node: {finals}, written by {written.get(final)} "
        "(node, writer, round)",
        f"  meanwhile a reader on each node: {len(reads[1])} + {len(reads[2])} GETs, "
        f"Cache-Status {outcomes}; after the writes, GET web1, web2, web1, web2: " +
        ", ".join(f"web{n} {g.cache}" for n in (1, 2) for g in gets[n]),
    ]))
    return out


def _check_contention(fleet, user, out):
    assert not out["bad"], f"{len(out['bad'])} PUTs not answered 204: " + "; ".join(
        f"{r.status} {r.body} {r.error}" for r in out["bad"][:5])
    finals, final = out["finals"], out["final"]
    assert len(set(finals.values())) == 1, f"the nodes disagree: {finals}"
    assert final in out["written"], f"the final date {final} was never written"
    expected = fl.greeting(user, final)
    for n, gs in out["gets"].items():
        for g in gs:
            assert (g.status, g.body) == (200, expected), f"web{n}: {g.status} {g.body}"
    # The shared cache converged on the row: after one fill, the nodes'
    # GETs are hits carrying the final date.
    assert out["gets"][2][-1].cache == "mod_hello; hit", out["gets"]
    assert out["gets"][1][-1].cache == "mod_hello; hit", out["gets"]
    greetings = {fl.greeting(user, d) for d in out["written"]}
    for n, rs in out["reads"].items():
        assert rs, f"the reader on web{n} made no GET"
        wrong = [r for r in rs
                 if not (r.status == 404 or (r.status == 200 and r.body in greetings))]
        assert not wrong, f"web{n}: {len(wrong)} GETs answered neither 404 nor a written " \
            f"date: {[(r.status, r.body, r.error) for r in wrong[:5]]}"


def test_concurrent_writes_of_one_user(fleet):
    """One writer on each node: every PUT is answered 204 (mod_hello retries
    the conflicts), every node ends on one of the written dates."""
    out = _contention(fleet, "fleetcontended", 1, WRITE_ROUNDS)
    _check_contention(fleet, "fleetcontended", out)
    assert out["conflicts"] > 0, "no certification conflict happened: the retry was not exercised"


def test_concurrent_writes_of_one_user_two_writers_per_node(fleet):
    """Two writers on each node (four at once): the same checks."""
    out = _contention(fleet, "fleetcontendedmore", 2, WRITE_ROUNDS)
    _check_contention(fleet, "fleetcontendedmore", out)


def _causal_reads(fleet, n):
    return int(fleet.status(n, "wsrep_causal_reads")["wsrep_causal_reads"])


def _read(path):
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def test_the_nodes_share_one_cache_and_survive_memcached_dying(fleet):
    """Runs after the contention tests, on purpose: after memcached restarts,
    a child whose pooled connection to it broke treats it as dead for 5 s
    (apr_memcache) and drops its writes' invalidations while other children
    already read from it again, so a contended user can be read stale for up
    to HelloCacheMaxAge (docs/architecture.md, open).

    A date read through one node is answered from the cache by the other;
    a PUT through either replaces it for both; with memcached killed every
    request is still answered (from the database, counted as cache errors)
    and nothing written meanwhile is lost; once memcached is back the nodes
    use it again, without a restart."""
    n1, n2 = (fl.Client(fleet.web_addr(n), fleet.web_port()) for n in (1, 2))
    user = "fleetshared"
    try:
        assert n1.put(user, date(1971, 6, 7)).status == 204
        first = n2.get(user)
        assert (first.status, first.cache) == (200, "mod_hello; fwd=miss; stored"), \
            (first.status, first.body, first.cache)
        again = n1.get(user)
        assert (again.body, again.cache) == (first.body, "mod_hello; hit"), again.cache
        assert n2.put(user, date(1972, 8, 9)).status == 204
        for c in (n1, n2):
            g = c.get(user)
            assert g.body == fl.greeting(user, date(1972, 8, 9)), (g.body, g.cache)
        assert n2.get(user).cache == "mod_hello; hit"
        errors_before = [_metric(fleet, n, "hello_cache_store_errors_total") for n in (1, 2)]

        fleet.ctl("cache", "kill")
        try:
            down = []
            for i in range(20):
                dob = date(1980, 1, 1) + timedelta(days=i)
                p = (n1, n2)[i % 2].put(user, dob)
                gets = [c.get(user) for c in (n1, n2)]
                down.append((p, gets))
                assert p.status == 204, (p.status, p.body)
                for g in gets:
                    assert (g.status, g.body) == (200, fl.greeting(user, dob)), \
                        (g.status, g.body, g.cache)
            errors = [_metric(fleet, n, "hello_cache_store_errors_total") - errors_before[n - 1]
                      for n in (1, 2)]
            assert all(e > 0 for e in errors), f"cache errors counted per node: {errors}"
            hits_while_down = [g.cache for _, gs in down for g in gs if "hit" in (g.cache or "")]
            assert not hits_while_down, hits_while_down
        finally:
            fleet.ctl("cache", "start")
        last = date(1980, 1, 20)
        assert fleet.sql(1, "SELECT DATE_FORMAT(date_of_birth, '%Y-%m-%d') FROM hello_users "
                            f"WHERE username = '{user}'") == [[last.isoformat()]]

        # apr_memcache tries a server it marked dead again after 5 s.
        deadline = time.monotonic() + 30
        while True:
            n1.get(user)
            g = n2.get(user)
            if g.cache == "mod_hello; hit":
                break
            assert time.monotonic() < deadline, f"no hit 30 s after memcached came back: {g.cache}"
            time.sleep(0.5)
        assert g.body == fl.greeting(user, last)
        print(f"\nshared cache: read through web2, hit on web1; memcached killed: "
              f"{len(down)} PUT+GET+GET rounds all answered from the database "
              f"(cache errors counted {errors}); back: hits again")
    finally:
        n1.close()
        n2.close()
        fleet.ctl("cache", "start")
