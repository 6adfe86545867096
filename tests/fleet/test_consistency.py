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
    stale read is the previous date). Returns (stale reads, failures)."""
    stale, failures = [], []
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
        expected = fl.greeting(user, dob)
        if g.status is None or g.status >= 500:
            failures.append(f"GET {user}: {g.status} {g.body} {g.error}")
        elif (g.status, g.body) != (200, expected):
            stale.append(f"{user}: wrote {dob}, read {g.status} {g.body}")
    return stale, failures


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
        stale, failures = _ryw(fleet, n1, n2, "rywsync", RYW_ROUNDS, rng)
        c1 = _causal_reads(fleet, db2)
        stale_nosync, failures_nosync = _ryw(fleet, n1, n2_nosync, "rywnosync", RYW_ROUNDS,
                                             rng)
        c2 = _causal_reads(fleet, db2)
        t_ryw = time.monotonic() - t0

        # -- what wsrep_sync_wait costs: GETs of one known user on node 2,
        #    with and without, interleaved; idle, then while node 1 writes.
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
        "GET latency on web2 (client-side, keep-alive, one user), with vs without "
        "wsrep_sync_wait:",
    ]
    for phase, (s, n, bad, writes) in phases.items():
        report.append(f"  {phase}{f' ({writes} PUTs meanwhile)' if writes else ''}:")
        report.append(f"    sync_wait=1: {_stats(s)}")
        report.append(f"    sync_wait=0: {_stats(n)}")
        report.append(f"    added: p50 {fl.ms(fl.percentile(s, 50) - fl.percentile(n, 50))}, "
                      f"mean {fl.ms(sum(s) / len(s) - sum(n) / len(n))}; wrong answers {len(bad)}")
    if stale_nosync:
        report.append("  stale without sync_wait, e.g.: " + "; ".join(stale_nosync[:3]))
    print("\n" + "\n".join(report))

    assert not failures and not failures_nosync, (failures + failures_nosync)[:10]
    # The setting is in force on web2:8080 (DBDInitSQL) and not on web2:8081
    # (the health checks, once a second, also read through web2:8080).
    assert c1 - c0 >= RYW_ROUNDS, f"wsrep_causal_reads grew by {c1 - c0} for {RYW_ROUNDS} GETs"
    assert c2 - c1 < RYW_ROUNDS // 10, f"wsrep_causal_reads grew by {c2 - c1} without sync_wait"
    assert not stale, f"{len(stale)} stale reads with wsrep_sync_wait=1: {stale[:10]}"
    for phase, (_, _, bad, _) in phases.items():
        assert not bad, f"{phase}: wrong answers {bad[:5]}"


def _contention(fleet, user, writers_per_node, rounds):
    """writers_per_node threads on each of web1 and web2 PUT one user, all
    released together every round, each with dates of its own. Returns what
    happened, printed."""
    writers = [(n, k) for n in (1, 2) for k in range(writers_per_node)]
    barrier = threading.Barrier(len(writers))
    base = date(1950, 1, 1)
    written = {}            # date -> (node, writer, round)
    results = {w: [] for w in writers}
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

    before = fleet.conflicts()
    logs_before = {n: len(_read(fleet.web_dir(n) / "error.log")) for n in (1, 2)}
    t0 = time.monotonic()
    threads = [threading.Thread(target=run, args=(i, n, k), daemon=True)
               for i, (n, k) in enumerate(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    elapsed = time.monotonic() - t0
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
    gets = {}
    for n in (1, 2):
        c = fl.Client(fleet.web_addr(n), fleet.web_port())
        gets[n] = c.get(user)
        c.close()
    new_log = {n: _read(fleet.web_dir(n) / "error.log")[logs_before[n]:] for n in (1, 2)}
    exhausted = {n: len(re.findall(r"upsert failed \(mysql driver, error 1213\)", new_log[n]))
                 for n in (1, 2)}
    lat = [r.latency for r in all_results]
    out = dict(writers=writers, results=all_results, statuses=statuses, cert=cert, bf=bf,
               conflicts=sum(cert.values()) + sum(bf.values()), finals=finals, final=final,
               written=written, gets=gets, exhausted=exhausted,
               bad=[r for r in all_results if r.status != 204])
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
    ]))
    return out


def _check_contention(fleet, user, out):
    assert not out["bad"], f"{len(out['bad'])} PUTs not answered 204: " + "; ".join(
        f"{r.status} {r.body} {r.error}" for r in out["bad"][:5])
    finals, final = out["finals"], out["final"]
    assert len(set(finals.values())) == 1, f"the nodes disagree: {finals}"
    assert final in out["written"], f"the final date {final} was never written"
    expected = fl.greeting(user, final)
    for n, g in out["gets"].items():
        assert (g.status, g.body) == (200, expected), f"web{n}: {g.status} {g.body}"


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
