"""A flood of malformed and hostile requests against a real httpd and
MariaDB (the requests come from floodgen.py, all from one seed).

More than 10,000 requests go over four kept-alive connections (a new one
whenever the server closes) and, for requests whose framing is hostile, over
a fresh connection each; a few slow senders dribble theirs meanwhile. Then:

- no answer is a 5xx (the database is up the whole time);
- every error answer to a request that reached a path under /hello is the
  module's JSON error, {"error": "<reason>"}; an HTML answer comes only from
  a request Apache refused before it could parse its request line (or from a
  path outside /hello), and those are counted and reported;
- every status under /hello is one that docs/API.md documents;
- no child exited on a signal;
- no row changed except by a request that got 204, and then to its date
  (half of the seeded users get only requests that must be refused: their
  rows must come out byte for byte as they went in);
- the server still answers correctly afterwards.

test_overlong_username_answers_as_documented pins down what the flood
found: a username of 4074 or more letters answers 403, not 400.

HELLO_FLOOD_SEED=<n> runs another flood. A failure prints the seed, the
index of each offending request and its bytes;
`/usr/bin/python3 tests/integration/floodgen.py --seed <n> --show <index>`
prints one request again (add --port to send it).
"""
import collections
import json
import os
import re
import time
from datetime import date

import pytest

import floodgen as fg
import hellotest as ht

SEED = int(os.environ.get("HELLO_FLOOD_SEED", fg.DEFAULT_SEED))
COUNT = 10_200
SLOW = 6
WORKERS = 4

# Users saved before the flood; the flood aims at them as well as at others.
SEEDED = {
    "floodAlice": "1970-01-01",
    "floodBob": "1985-06-15",
    "floodCarol": "2000-02-29",
    "floodDave": "1999-12-31",
    "floodEve": "1950-07-04",
    "floodMallory": "1000-01-01",
    "floodTrent": "2004-10-10",
    "floodZed": "1969-07-20",
}

# Only requests that must be refused aim at these: their rows must not change.
PROTECTED = ("floodEve", "floodMallory", "floodTrent", "floodZed")

# docs/API.md: the statuses the module answers under its location.
DOCUMENTED = {200, 204, 400, 404, 405, 408, 413, 415}
# Apache's own answer to an Expect it cannot meet; the module makes it JSON.
PROTOCOL = {417}
# What Apache answers, in HTML, to a request line it cannot parse.
UNPARSED_HTML = {400, 414}


class Flood:
    def __init__(self, server, db, requests, outcomes, before, after, elapsed):
        self.server = server
        self.db = db
        self.requests = requests
        self.outcomes = outcomes
        self.before = before
        self.after = after
        self.elapsed = elapsed

    def answers(self):
        """(outcome, response, is_first) for every answer received."""
        for out in self.outcomes:
            for i, resp in enumerate(out.responses):
                yield out, resp, i == 0

    def summary(self):
        status = collections.Counter()
        kinds = collections.Counter()
        for out in self.outcomes:
            first = out.first
            key = first.status if first else ("no answer" if not out.error else out.error)
            if first and first.status is None:
                key = "HTTP/0.9 body"
            status[key] += 1
            if first:
                kinds[(out.request.scope, first.status,
                       (first.media_type or b"-").decode("latin-1"))] += 1
        extra = sum(max(0, len(o.responses) - 1) for o in self.outcomes)
        slow = [o for o in self.outcomes if o.request.slow]
        lines = [f"flood: seed {SEED}, {len(self.outcomes)} requests ({len(slow)} slow), "
                 f"{WORKERS} kept-alive connections, sent and answered in {self.elapsed:.1f} s",
                 "first answers by status: " + ", ".join(
                     f"{k}: {v}" for k, v in sorted(status.items(), key=lambda kv: str(kv[0]))),
                 f"extra answers (bytes after a request parsed as another request): {extra}",
                 "by scope, status, media type:"]
        lines += [f"  {s:9} {st!s:5} {mt:28} {n}" for (s, st, mt), n in
                  sorted(kinds.items(), key=lambda kv: (kv[0][0], str(kv[0][1]), kv[0][2]))]
        return "\n".join(lines)


def table(db):
    """The whole hello_users table, every column, by username."""
    return {row[0]: tuple(row) for row in db.sql("SELECT * FROM hello_users ORDER BY username")}


@pytest.fixture(scope="module")
def flood(tmp_path_factory):
    root = tmp_path_factory.mktemp("flood")
    db = ht.MariaDB(root / "mariadb")
    server = None
    try:
        db.create()
        server = ht.PinnedHttpd(root / "httpd", db=db)
        server.start()
        client = server.client()
        for name, dob in SEEDED.items():
            assert client.put_date(f"/hello/{name}", dob).status == 204
        before = table(db)
        assert set(before) == set(SEEDED)
        requests = fg.generate(SEED, COUNT, list(SEEDED), slow=SLOW, protected=PROTECTED)
        print(f"\nHELLO_FLOOD_SEED={SEED}: {len(requests)} requests")
        started = time.monotonic()
        outcomes = fg.Sender(server.port, timeout=12, deadline=90).run(requests, WORKERS)
        elapsed = time.monotonic() - started
        after = table(db)
        result = Flood(server, db, requests, outcomes, before, after, elapsed)
        print(result.summary())
        yield result
    finally:
        if server is not None:
            server.stop()
        db.stop()


def explain(title, bad, limit=10):
    lines = [f"{title}: {len(bad)} request(s). Seed {SEED}: HELLO_FLOOD_SEED={SEED} replays the "
             f"flood; `/usr/bin/python3 tests/integration/floodgen.py --seed {SEED} --show INDEX` "
             "prints one request."]
    for out, why in bad[:limit]:
        answers = "; ".join(r.short() for r in out.responses) or "(none)"
        lines.append(f"* {why}\n  {out.request.show()}\n  answers: {answers}"
                     + (f"\n  error: {out.error}" if out.error else ""))
    if len(bad) > limit:
        lines.append(f"... and {len(bad) - limit} more")
    return "\n".join(lines)


def json_body(resp):
    try:
        return json.loads(resp.body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None


# ---- the flood ran, and every request had its answer ------------------------------------

def test_flood_sent_every_request_and_got_answers(flood):
    print("\n" + flood.summary())
    assert len(flood.outcomes) >= 10_000
    families = collections.Counter(o.request.family.split("/")[0] for o in flood.outcomes)
    for family in ("method", "path", "json", "headers", "chunked", "oversize", "version",
                   "garbage", "slow"):
        assert families[family] > 0, families
    bad = []
    for out in flood.outcomes:
        req = out.request
        if out.error and out.error != "closed without an answer":
            bad.append((out, f"no usable answer: {out.error}"))
        elif not out.responses and req.scope in ("under", "outside"):
            bad.append((out, "a complete request got no answer"))
        elif out.desync:
            bad.append((out, f"bytes were waiting on the kept connection after its answer: "
                             f"{out.desync[:200]!r}"))
        elif len(out.responses) > 1 and not req.extra_ok:
            bad.append((out, f"{len(out.responses)} answers to one request"))
    assert not bad, explain("requests without a proper answer", bad)


def test_flood_no_5xx(flood):
    bad = [(out, f"answer {i + 1} is {resp.status}")
           for out in flood.outcomes for i, resp in enumerate(out.responses)
           if resp.status is not None and resp.status >= 500]
    assert not bad, explain("5xx answers while the database was up", bad)
    logged = [line for line in flood.server.access_log_lines()
              if re.search(r'" 5\d\d (\d+|-) \d+us "', line)]
    assert not logged, "access.log has 5xx answers:\n" + "\n".join(l[:300] for l in logged[:10])


# ---- the error format ------------------------------------------------------------------

def test_flood_errors_under_the_location_are_json(flood):
    """Every answer to a request that reached a path under /hello has
    Content-Type application/json, and an error's body is exactly
    {"error": "<non-empty reason>"} (HEAD: no body)."""
    bad = []
    for out in flood.outcomes:
        req, resp = out.request, out.first
        if resp is None or req.scope not in ("under", "http09"):
            continue
        if resp.status is None:  # HTTP/0.9: a bare body, no headers
            body = json_body(resp)
            if not (isinstance(body, dict) and len(body) == 1
                    and isinstance(body.get("error", body.get("message")), str)):
                bad.append((out, "an HTTP/0.9 answer that is not the module's JSON"))
            continue
        if resp.status < 200 or resp.status == 204:
            continue
        if resp.media_type != b"application/json":
            bad.append((out, f"{resp.status} with Content-Type {resp.header('Content-Type')!r}"))
            continue
        if resp.header_count("Content-Type") != 1:
            bad.append((out, "more than one Content-Type"))
            continue
        if req.method == b"HEAD":
            if resp.body:
                bad.append((out, "a body in an answer to HEAD"))
            continue
        body = json_body(resp)
        if resp.status >= 400:
            if not (isinstance(body, dict) and set(body) == {"error"}
                    and isinstance(body["error"], str) and body["error"].strip()):
                bad.append((out, f"{resp.status} whose body is not {{\"error\": \"<reason>\"}}"))
        elif resp.status == 200:
            if not (isinstance(body, dict) and set(body) == {"message"}
                    and isinstance(body["message"], str)):
                bad.append((out, "200 whose body is not {\"message\": ...}"))
    assert not bad, explain("answers under /hello that are not the module's JSON", bad)


def test_flood_html_only_for_requests_apache_could_not_parse(flood):
    """An answer that is not JSON comes only from a request outside /hello,
    or from one whose request line Apache refused before parsing it (then it
    is a 400 or 414), or from leftover bytes after a request."""
    kinds = collections.Counter()
    bad = []
    for out, resp, first in flood.answers():
        if resp.status is None or resp.media_type == b"application/json" or not resp.body:
            continue
        req = out.request
        origin = req.scope if first else "leftover bytes"
        kinds[(origin, resp.status, (resp.media_type or b"-").decode("latin-1"))] += 1
        if origin == "outside":
            continue
        if origin in ("unparsed", "leftover bytes") and resp.status in UNPARSED_HTML:
            continue
        bad.append((out, f"non-JSON {resp.status} ({resp.media_type!r}) for a request of scope "
                         f"{origin}"))
    print("\nnon-JSON answers by origin, status, media type:\n" + "\n".join(
        f"  {o:15} {s} {m}: {n}" for (o, s, m), n in sorted(kinds.items())))
    assert not bad, explain("non-JSON answers that are not Apache's refusals of unparsed "
                            "requests", bad)


# ---- statuses and successes -------------------------------------------------------------

def test_flood_statuses_under_the_location_are_documented(flood):
    bad = []
    counts = collections.Counter()
    for out in flood.outcomes:
        resp = out.first
        if resp is None or resp.status is None or out.request.scope != "under":
            continue
        counts[resp.status] += 1
        if resp.status not in DOCUMENTED | PROTOCOL:
            bad.append((out, f"status {resp.status}, which docs/API.md does not document"))
    print("\nstatuses under /hello:", dict(sorted(counts.items())))
    assert not bad, explain("undocumented statuses under /hello", bad)


def test_flood_success_only_for_acceptable_requests(flood):
    """A 2xx answers only a request that deserves it: GET/HEAD of a valid
    username, or a PUT whose framing, Content-Type, username and body
    (checked by floodgen.reference_dob) are all acceptable."""
    bad = []
    for out in flood.outcomes:
        resp = out.first
        if resp is None or resp.status is None or not 200 <= resp.status < 300:
            continue
        if out.request.scope != "under":
            continue
        if not out.request.may_succeed:
            bad.append((out, f"{resp.status} for a request that should have been refused"))
    assert not bad, explain("hostile requests that succeeded", bad)


# ---- the database -----------------------------------------------------------------------

def test_flood_changed_no_row_except_by_a_204(flood):
    saved = collections.defaultdict(set)
    unverifiable = []
    for out in flood.outcomes:
        resp = out.first
        if resp is None or resp.status != 204:
            continue
        req = out.request
        if req.username is None or req.dob is None:
            unverifiable.append((out, "a 204 whose username or date the flood cannot tell"))
            continue
        saved[req.username].add(req.dob)
    assert not unverifiable, explain("204 answers to unverifiable requests", unverifiable)
    problems = []
    for name, row in flood.before.items():
        if name not in flood.after:
            problems.append(f"row {name} disappeared: {row}")
    for name, row in flood.after.items():
        if flood.before.get(name) == row:
            continue
        if name not in saved:
            problems.append(f"row {name} changed without a 204: {flood.before.get(name)} -> {row}")
        elif row[1] not in saved[name]:
            problems.append(f"row {name} holds {row[1]}, not a date a 204 saved "
                            f"({sorted(saved[name])})")
    for name in PROTECTED:
        if flood.after.get(name) != flood.before[name]:
            problems.append(f"protected row {name} changed: {flood.before[name]} -> "
                            f"{flood.after.get(name)}")
    aimed = collections.Counter(o.request.username for o in flood.outcomes
                                if o.request.username in PROTECTED)
    changed = sum(1 for n in flood.after if flood.before.get(n) != flood.after[n])
    print(f"\nrows before {len(flood.before)}, after {len(flood.after)}, changed or added "
          f"{changed}; 204 answers for {len(saved)} usernames; requests that must fail aimed "
          f"at the protected rows: {dict(aimed)}")
    assert not problems, f"seed {SEED}:\n" + "\n".join(problems[:30])


# ---- the server ---------------------------------------------------------------------------

def test_flood_no_child_crashed(flood):
    text = flood.server.error_log_text()
    crashes = flood.server.crash_lines()
    crashes += [l for l in text.splitlines() if ("exit signal" in l or "Segmentation" in l)
                and l not in crashes]
    assert not crashes, f"seed {SEED}: {flood.server.error_log}:\n" + "\n".join(crashes[:20])
    assert ht.child_pids(flood.server.pid), "httpd has no children left"


def test_flood_server_still_answers_correctly(flood):
    client = flood.server.client()
    days = {ht.utc_today()}
    r = client.put_date("/hello/floodAfterwards", "1990-05-17")
    assert r.status == 204, r
    assert flood.db.date_of_birth("floodAfterwards") == "1990-05-17"
    r = client.get("/hello/floodAfterwards")
    days.add(ht.utc_today())
    assert r.status == 200, r
    assert r.message in {ht.expected_message("floodAfterwards", date(1990, 5, 17), d)
                         for d in days}
    for name, dob in SEEDED.items():
        if flood.after.get(name) == flood.before[name]:
            r = client.get(f"/hello/{name}")
            assert r.status == 200, r
            assert r.message in {ht.expected_message(name, date.fromisoformat(dob), d)
                                 for d in days}
    r = client.head("/hello/floodAfterwards")
    assert r.status == 200 and r.body == b""
    r = client.get("/hello/neverSavedAfterFlood")
    assert r.status == 404 and r.error == ht.R_UNKNOWN


# ---- found by the flood: a long username is 403, not 400 ------------------------------

@pytest.mark.parametrize("length", [65, 4073, 4074, 8150])
@pytest.mark.parametrize("method,expected", [("GET", 400), ("PUT", 400), ("DELETE", 405)])
def test_overlong_username_answers_as_documented(flood, method, expected, length):
    """docs/API.md: a username longer than 64 letters answers 400 (405 for a
    method other than GET, HEAD and PUT: step 2 comes before step 3) -- at
    any length the request line allows (LimitRequestLine 8190)."""
    name = "a" * length
    body = '{"dateOfBirth":"1990-05-17"}' if method == "PUT" else None
    resp = flood.server.client().request(method, f"/hello/{name}", body=body, check=False)
    assert (resp.status, resp.header("Content-Type")) == (expected, "application/json"), (
        f"{method} /hello/<{length} letters> answered {resp.status} {resp.body[:120]!r}, "
        f"expected {expected} (docs/API.md, 'Username rules' and 'Order of checks')")
    if method != "HEAD":
        assert resp.error == (ht.R_USERNAME if expected == 400 else ht.R_METHOD)
