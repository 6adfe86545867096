"""A deterministic flood of malformed and hostile HTTP requests, and the
raw-socket sender that test_flood.py drives it with.

Every request is built from one seed (random.Random(seed)), so a failing
request replays from the seed and its index:

    /usr/bin/python3 tests/integration/floodgen.py --seed SEED --show INDEX
    /usr/bin/python3 tests/integration/floodgen.py --seed SEED --show INDEX --port PORT

The first prints the exact bytes of request INDEX; the second also sends
them to 127.0.0.1:PORT and prints the raw answer.

What a request is expected to get is not decided per request here; each
request carries what the checks of test_flood.py need: its scope (was it
well-formed enough to reach a path under /hello, or not under it at all, or
refused before Apache could parse its request line), whether a 2xx would be
a correct answer, and the username and date a 204 would store.
"""
import argparse
import json
import math
import random
import re
import socket
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone

DEFAULT_SEED = 20251126
BASE = b"/hello"
# Apache's LimitRequestLine (default 8190): a longer request line gets 414
# before the request is parsed. Lines near the limit count as unparsed.
LINE_LIMIT = 8190
LINE_MARGIN = 16

UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
USERNAME_RE = re.compile(rb"[A-Za-z]{1,64}")
DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
HOST = b"Host: 127.0.0.1"


# ---- what a request is ------------------------------------------------------------------

@dataclass
class FloodRequest:
    index: int
    family: str            # which generator made it, e.g. "path/overlong-name"
    data: bytes            # exactly the bytes sent
    method: bytes          # the method token as sent (b"" if there is none)
    scope: str             # "under" | "outside" | "unparsed" | "http09" (see scope_of)
    username: str | None   # the username the path names after decoding, if valid
    final: bool            # alone on a fresh connection, write side shut after it
    may_succeed: bool      # a 2xx is a correct answer
    dob: str | None        # for a PUT that may succeed: the date a 204 stores
    extra_ok: bool = False  # bytes after the request may be answered as a request
    pieces: list = field(default_factory=list)  # slow sender: [(bytes, sleep_after)]

    @property
    def slow(self):
        return bool(self.pieces)

    def show(self, limit=1500):
        data = self.data
        shown = repr(data[:limit]) + (f" ... (+{len(data) - limit} bytes)" if len(data) > limit
                                      else "")
        return (f"request #{self.index} [{self.family}] {len(data)} bytes, scope={self.scope}, "
                f"{'slow, ' if self.slow else ''}{'own connection' if self.final else 'keep-alive'}"
                f":\n    {shown}")


# ---- classification -------------------------------------------------------------------

def _decode_unreserved(path):
    def sub(m):
        b = int(m.group(1), 16)
        return bytes([b]) if b in UNRESERVED else m.group(0)
    return re.sub(rb"%([0-9A-Fa-f]{2})", sub, path)


def _decode_all(path):
    return re.sub(rb"%([0-9A-Fa-f]{2})", lambda m: bytes([int(m.group(1), 16)]), path)


def normalize_path(target):
    """The path Apache maps for target, as bytes, fully %-decoded; None when
    Apache refuses it before mapping (no leading slash, '..' above the root)."""
    m = re.match(rb"(?i)https?://[^/?#]*", target)
    if m:
        target = target[m.end():] or b"/"
    if not target.startswith(b"/"):
        return None
    path = target.split(b"?", 1)[0]
    if re.search(rb"%(?![0-9A-Fa-f]{2})", path):
        # A malformed escape: Apache refuses the path (400) while it
        # normalizes it, with the dot segments and slashes before the escape
        # already resolved. Only a path with neither is clearly under its
        # raw location; other cases are left to "unparsed".
        if b"//" in path or re.search(rb"(?i)/(\.|%2e)", path):
            return None
        return path
    path = re.sub(rb"/+", b"/", _decode_unreserved(path))
    parts = path.split(b"/")[1:]
    segs = []
    for i, seg in enumerate(parts):
        last = i == len(parts) - 1
        if seg in (b".", b".."):
            if seg == b"..":
                if not segs:
                    return None
                segs.pop()
            if last:
                segs.append(b"")
            continue
        segs.append(seg)
    return _decode_all(b"/" + b"/".join(segs))


def split_request_line(data):
    """(method, target, version, line, crlf) of the first request line;
    version is None when there is none (HTTP/0.9)."""
    while data.startswith(b"\r\n"):
        data = data[2:]
    crlf = data.find(b"\r\n")
    lf = data.find(b"\n")
    if crlf < 0 or (0 <= lf < crlf):
        line = data[:lf] if lf >= 0 else data
        return None, None, None, line, False
    line = data[:crlf]
    parts = line.split(b" ")
    if len(parts) == 3:
        return parts[0], parts[1], parts[2], line, True
    if len(parts) == 2:
        return parts[0], parts[1], None, line, True
    return None, None, None, line, True


def method_token(data):
    """The bytes before the first space of the request (what Apache takes
    for the method, e.g. to answer HEAD without a body)."""
    while data.startswith(b"\r\n"):
        data = data[2:]
    return data.split(b"\r\n", 1)[0].split(b" ", 1)[0]


def scope_of(data):
    """Where a request lands:
    "under": a well-formed request line whose path is under /hello: every
             error answer must be the module's JSON;
    "outside": a well-formed request line whose path is not under /hello;
    "unparsed": a request line Apache may refuse before it parses it
             (garbage, bare LF, an overlong line, a bad version, a path
             above the root): an HTML 400/414, or no answer, is allowed;
    "http09": "GET /path" without a version: the answer is a bare body."""
    method, target, version, line, crlf = split_request_line(data)
    if method is None or not crlf or b"\x00" in line:
        return "unparsed"  # Apache refuses a NUL while it reads the line
    if len(line) > LINE_LIMIT - LINE_MARGIN or not re.fullmatch(rb"[A-Za-z]+", method):
        return "unparsed"
    if version is None:
        if method != b"GET":
            return "unparsed"
        path = normalize_path(target)
        return "http09" if path is not None else "unparsed"
    if version not in (b"HTTP/1.0", b"HTTP/1.1"):
        return "unparsed"
    path = normalize_path(target)
    if path is None:
        return "unparsed"
    if path == BASE or path.startswith(BASE + b"/"):
        return "under"
    return "outside"


def username_of(data):
    """The username the request's path names (one valid segment after
    /hello/), or None."""
    method, target, version, line, crlf = split_request_line(data)
    if target is None:
        return None
    path = normalize_path(target)
    if path is None or not path.startswith(BASE + b"/"):
        return None
    seg = path[len(BASE) + 1:]
    if not USERNAME_RE.fullmatch(seg):
        return None
    return seg.decode("ascii")


def reference_dob(body, today):
    """The date a PUT with this body stores by docs/API.md, or None if it is
    refused; "?" when this checker cannot tell (then either is accepted)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if text.startswith("\ufeff") or re.search(r"\\u[dD][89a-fA-F]", text):
        return "?"  # BOM, escaped surrogates: RFC 8259 leaves them to the parser

    def pairs(items):
        keys = [k for k, _ in items]
        if len(keys) != len(set(keys)):
            raise ValueError("duplicate member")
        return dict(items)

    def constant(name):
        raise ValueError(name)

    try:
        obj = json.loads(text, object_pairs_hook=pairs, parse_constant=constant,
                         parse_int=lambda s: 0, parse_float=lambda s: 0.0)
    except RecursionError:
        return "?"
    except ValueError:
        return None
    if not isinstance(obj, dict) or not isinstance(obj.get("dateOfBirth"), str):
        return None
    value = obj["dateOfBirth"]
    if not DATE_RE.fullmatch(value):
        return None
    try:
        d = date.fromisoformat(value)
    except ValueError:
        return None
    if d.year < 1000 or d >= today:
        return None
    return value


def media_type_ok(data):
    """Whether the request's Content-Type is absent or application/json
    (one header)."""
    head = data.split(b"\r\n\r\n", 1)[0]
    values = [line.split(b":", 1)[1].strip() for line in head.split(b"\r\n")[1:]
              if line.lower().startswith(b"content-type:")]
    if not values:
        return True
    if len(values) > 1:
        return False
    mt = values[0].split(b";", 1)[0].strip().lower()
    return mt == b"application/json"


# ---- building blocks ---------------------------------------------------------------------

def build(method, target, headers=(), body=b"", version=b"HTTP/1.1", eol=b"\r\n", host=True):
    line = method + b" " + target + (b" " + version if version is not None else b"")
    lines = [line] + ([HOST] if host else []) + list(headers)
    return eol.join(lines) + eol + eol + body


def chunked(payload, sizes=None, ext=b"", trailer=b"", upper=False, zeros=0):
    out = b""
    pos = 0
    sizes = list(sizes or [len(payload)])
    while pos < len(payload):
        n = min(sizes.pop(0) if sizes else len(payload) - pos, len(payload) - pos)
        n = max(n, 1)
        size = (b"%X" if upper else b"%x") % n
        out += b"0" * zeros + size + ext + b"\r\n" + payload[pos:pos + n] + b"\r\n"
        pos += n
    return out + b"0\r\n" + trailer + b"\r\n"


def random_sizes(rng, total):
    sizes = []
    while sum(sizes) < total:
        sizes.append(rng.choice([1, 1, 2, 3, 7, 16, 100, 1000]))
    return sizes


class Gen:
    """The families of requests. Each returns (family, data, payload,
    framing_ok, final, extra_ok): payload is the body as the module would
    read it (for the reference check), framing_ok whether the body framing
    is one a server may accept."""

    def __init__(self, rng, users, today, protected=()):
        self.rng = rng
        self.users = users
        self.today = today
        self.protected = set(protected)  # users only requests that must fail aim at

    # -- names and paths

    def valid_name(self):
        n = self.rng.choice([1, 2, 5, 8, 12, 20, 40, 63, 64])
        return "".join(self.rng.choices(LETTERS, k=n))

    def user(self):
        return self.rng.choice(self.users) if self.rng.random() < 0.6 else self.valid_name()

    def overlong_letters(self):
        n = int(math.exp(self.rng.uniform(math.log(65), math.log(10000))))
        return "".join(self.rng.choices(LETTERS, k=n)).encode()

    UNICODE = ["élodie", "Zoë", "漢字", "😀", "аlice", "Ａｌｉｃｅ", "ǅemal", "ﬀ", "a\u0301",
               "\u202egnp", "\u200d", "ß", "İstanbul", "\uffff", "\U0010ffff"]

    def hostile_segment(self):
        rng = self.rng
        user = self.user().encode()
        kind = rng.choice(["overlong", "overlong", "overlong-encoded", "digit", "punct",
                           "utf8-raw", "utf8-enc", "bad-utf8-raw", "bad-utf8-enc", "nul",
                           "slash", "dots", "crlf", "sql", "letters-encoded", "bad-escape",
                           "empty", "space", "plus", "semicolon", "tilde"])
        if kind == "overlong":
            return kind, self.overlong_letters()
        if kind == "overlong-encoded":
            n = rng.randint(65, 2700)
            return kind, b"".join(b"%%%02X" % ord(c) for c in rng.choices(LETTERS, k=n))
        if kind == "digit":
            return kind, user + str(rng.randint(0, 999)).encode()
        if kind == "punct":
            return kind, user + rng.choice([b"!", b"-", b"_", b".", b"'", b"*", b"(", b")",
                                            b"$", b"@", b"~", b"=", b",", b":"])
        if kind in ("utf8-raw", "utf8-enc"):
            s = rng.choice(self.UNICODE).encode("utf-8")
            if kind == "utf8-enc":
                s = urllib.parse.quote_from_bytes(s, safe=b"").encode()
            return kind, user[:3] + s
        if kind == "bad-utf8-raw":
            return kind, user + rng.choice([b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xe2\x82",
                                            b"\x80", b"\xfe\xff"])
        if kind == "bad-utf8-enc":
            return kind, user + rng.choice([b"%ff", b"%C0%AF", b"%ed%a0%80", b"%e2%82", b"%80"])
        if kind == "nul":
            return kind, rng.choice([user + b"%00", b"%00" + user, user + b"%00.json", b"%00"])
        if kind == "slash":
            return kind, rng.choice([user + b"%2F" + user, b"%2F", user + b"%2f", b"..%2F..%2Fetc",
                                     user + b"%5C" + user, user + b"\\x"])
        if kind == "dots":
            return kind, rng.choice([b"%2e", b"%2e%2e", b".%2e", b"%2E%2E%2F" + user, b"...",
                                     user + b"%2e%2e"])
        if kind == "crlf":
            return kind, user + rng.choice([b"%0d%0aSet-Cookie:%20x=1", b"%0a", b"%09",
                                            b"%0D%0A%0D%0AGET%20/", b"%7f"])
        if kind == "sql":
            return kind, rng.choice([b"alice%27--", b"a%27%20OR%20%271%27%3D%271",
                                     b"x%3B%20DROP%20TABLE%20hello_users", b"1%22%20OR%20%22%22%3D%22"])
        if kind == "letters-encoded":
            # Valid: letters, some %-encoded ("%61lice" is "alice").
            return kind, b"".join(b"%%%02x" % c if rng.random() < 0.5 else bytes([c])
                                  for c in user)
        if kind == "bad-escape":
            return kind, user + rng.choice([b"%zz", b"%", b"%4", b"%%41", b"%u0041", b"%G0"])
        if kind == "empty":
            return kind, b""
        if kind == "space":
            return kind, user + b"%20" + user
        if kind == "plus":
            return kind, user + b"+" + user
        if kind == "semicolon":
            return kind, user + b";v=1"
        return kind, b"~" + user

    PATH_FORMS = [
        (30, b"/hello/{seg}"), (2, b"//hello//{seg}"), (2, b"/hello//{seg}"), (2, b"/hello/./{seg}"),
        (2, b"/hello/../hello/{seg}"), (2, b"/x/../hello/{seg}"), (2, b"/hello/{seg}/"),
        (2, b"/hello/{seg}/x"), (2, b"/hello/{seg}/.."), (2, b"/hello/{seg}?q=1&x=%00"),
        (1, b"/hello/{seg}#frag"), (1, b"/hello%2F{seg}"), (1, b"/hello/%2e%2e/{seg}"),
        (1, b"/hello/%2e%2e/%2e%2e/{seg}"), (1, b"/../hello/{seg}"), (1, b"/HELLO/{seg}"),
        (1, b"/hello{seg}"), (2, b"http://127.0.0.1/hello/{seg}"),
        (1, b"http://evil.example/hello/{seg}"), (1, b"/hello"), (1, b"/hello/"),
        (1, b"/hello/."), (1, b"/hello/.."), (1, b"/"), (1, b"/hello/%2e"),
        (1, b"/hello.php?u={seg}"),
    ]

    def path(self, seg):
        total = sum(w for w, _ in self.PATH_FORMS)
        pick = self.rng.uniform(0, total)
        for w, form in self.PATH_FORMS:
            pick -= w
            if pick <= 0:
                break
        return form.replace(b"{seg}", seg)

    # -- dates and bodies

    def valid_dob(self):
        d = date(1900, 1, 1) + timedelta(days=self.rng.randrange(0, 40000))
        return d.isoformat()

    BAD_DATES = ["2001-02-29", "2000-13-01", "2000-00-10", "2000-01-00", "2000-01-32",
                 "0999-12-31", "0000-01-01", "2000-1-1", " 2000-01-01", "2000-01-01 ",
                 "2000/01/01", "20000101", "2000-01-01T00:00:00Z", "+2000-01-01", "-2000-01-01",
                 "２０００-01-01", "2000-01-01\u0000", "2000-01-1a", "", "1900-02-29",
                 "2000-02-30", "10000-01-01", "2000-01-01\n", "2000-01-01x", "٢٠٠٠-01-01",
                 "2999-01-01", "9999-12-31", "3000-02-29"]

    def random_json(self, depth=0):
        rng = self.rng
        kinds = ["int", "float", "str", "bool", "null"] + (["list", "dict"] * 2 if depth < 4 else [])
        kind = rng.choice(kinds)
        if kind == "int":
            return rng.choice([0, -1, 1, 2 ** 63, -(2 ** 63) - 1, 10 ** 30, rng.randint(-99, 99)])
        if kind == "float":
            return rng.choice([0.5, -0.0, 1e308, 5e-324, 1.5e300])
        if kind == "str":
            return rng.choice(["", "x", "2000-01-01", "dateOfBirth", "\u0000", "é", "😀", "\\"])
        if kind == "bool":
            return rng.random() < 0.5
        if kind == "null":
            return None
        if kind == "list":
            return [self.random_json(depth + 1) for _ in range(rng.randint(0, 4))]
        keys = ["dateOfBirth", "dateofbirth", "DateOfBirth", "a", "", "date", "name"]
        return {rng.choice(keys): self.random_json(depth + 1) for _ in range(rng.randint(0, 4))}

    def mutate(self, body):
        rng = self.rng
        b = bytearray(body)
        for _ in range(rng.randint(1, 5)):
            op = rng.choice(["flip", "insert", "delete", "dup"])
            pos = rng.randrange(0, len(b) + 1) if b else 0
            if op == "flip" and b:
                b[min(pos, len(b) - 1)] = rng.randrange(256)
            elif op == "insert":
                b[pos:pos] = bytes([rng.choice(b'{}[]":,\\0123456789-eE. \x00\xff')])
            elif op == "delete" and b:
                del b[min(pos, len(b) - 1)]
            elif op == "dup" and b:
                b[pos:pos] = b[max(0, pos - 5):pos]
        return bytes(b)

    def json_body(self):
        rng = self.rng
        dob = self.valid_dob()
        valid = json.dumps({"dateOfBirth": dob}).encode()
        kind = rng.choice(["valid", "valid", "valid-extra", "escaped-valid", "missing",
                           "wrong-type", "bad-date", "bad-date", "truncated", "truncated",
                           "random-json", "random-json", "deep-array", "deep-object",
                           "deep-in-dob", "deep-valid", "huge-number", "huge-number", "dup",
                           "bad-utf8", "bom", "utf16", "nul", "control", "lone-surrogate",
                           "mutated", "mutated", "mutated", "whitespace", "non-json",
                           "padded", "unicode-key"])
        if kind == "valid":
            return kind, valid
        if kind == "valid-extra":
            return kind, json.dumps({"nickname": "x" * rng.randint(0, 300), "dateOfBirth": dob,
                                     "n": [1, {"a": None}]}).encode()
        if kind == "escaped-valid":
            return kind, ('{"dateOfBirth":"\\u00%02x%s"}' % (ord(dob[0]), dob[1:])).encode()
        if kind == "missing":
            return kind, json.dumps({rng.choice(["dateofbirth", "date", "DateOfBirth", "dob",
                                                 "dateOfBirth ", ""]): dob}).encode()
        if kind == "wrong-type":
            value = rng.choice([19900101, None, True, [dob], {"date": dob}, 1.5, ""])
            return kind, json.dumps({"dateOfBirth": value}).encode()
        if kind == "bad-date":
            return kind, json.dumps({"dateOfBirth": rng.choice(self.BAD_DATES)},
                                    ensure_ascii=rng.random() < 0.5).encode()
        if kind == "truncated":
            return kind, valid[:rng.randrange(0, len(valid))]
        if kind == "random-json":
            return kind, json.dumps(self.random_json()).encode()
        if kind == "deep-array":
            d = rng.choice([10, 100, 1000, 2000, 4000, 5000, 100000])
            return kind, b"[" * d + (b"]" * d if rng.random() < 0.5 else b"")
        if kind == "deep-object":
            d = rng.choice([10, 100, 500, 800, 2000])
            return kind, b'{"a":' * d + b"1" + b"}" * d
        if kind == "deep-in-dob":
            d = rng.choice([10, 100, 1000, 2000])
            return kind, b'{"dateOfBirth":' + b"[" * d + b"]" * d + b"}"
        if kind == "deep-valid":
            d = rng.choice([10, 100, 1000, 1900])
            return kind, (b'{"x":' + b"[" * d + b"]" * d + b',"dateOfBirth":"' + dob.encode()
                          + b'"}')
        if kind == "huge-number":
            return kind, rng.choice([
                b'{"dateOfBirth":"' + dob.encode() + b'","n":1e999999}',
                b'{"n":' + b"9" * 4000 + b"}",
                b'{"dateOfBirth":' + b"9" * 4000 + b"}",
                b'{"dateOfBirth":-0}', b'{"dateOfBirth":1.5e308}', b'{"dateOfBirth":NaN}',
                b'{"dateOfBirth":Infinity}', b'{"dateOfBirth":-Infinity}',
                b'{"dateOfBirth":"' + dob.encode() + b'","n":-' + b"9" * 3000 + b".5e-99999}",
                b'{"dateOfBirth":"' + dob.encode() + b'","n":0x10}',
                b'{"dateOfBirth":"' + dob.encode() + b'","n":01}',
                b'{"dateOfBirth":"' + dob.encode() + b'","n":1.}',
            ])
        if kind == "dup":
            return kind, rng.choice([
                b'{"dateOfBirth":"' + dob.encode() + b'","dateOfBirth":"' + dob.encode() + b'"}',
                b'{"dateOfBirth":"' + dob.encode() + b'","dateOfBirth":"1990-01-01"}',
                b'{"a":1,"a":2,"dateOfBirth":"' + dob.encode() + b'"}',
                b'{"dateOfBirth":"' + dob.encode() + b'","date\\u004ffBirth":"1990-01-01"}',
            ])
        if kind == "bad-utf8":
            bad = rng.choice([b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xe2\x82", b"\x80",
                              b"\xf8\x88\x80\x80\x80", b"\xf4\x90\x80\x80"])
            return kind, b'{"dateOfBirth":"' + dob.encode() + b'","x":"' + bad + b'"}'
        if kind == "bom":
            return kind, b"\xef\xbb\xbf" + valid
        if kind == "utf16":
            return kind, valid.decode().encode(rng.choice(["utf-16", "utf-16-le", "utf-32"]))
        if kind == "nul":
            return kind, rng.choice([valid + b"\x00", b"\x00" + valid,
                                     valid[:-2] + b'\x00"}', valid[:-2] + b'\\u0000"}'])
        if kind == "control":
            return kind, valid[:-2] + rng.choice([b"\n", b"\t", b"\x01", b"\x1f"]) + b'"}'
        if kind == "lone-surrogate":
            return kind, b'{"dateOfBirth":"' + dob.encode() + b'","x":"\\ud800"}'
        if kind == "mutated":
            return kind, self.mutate(valid)
        if kind == "whitespace":
            return kind, rng.choice([b"", b" ", b"\r\n\t ", b"\x0b", b"\xc2\xa0"])
        if kind == "non-json":
            return kind, rng.choice([b"dateOfBirth=2000-01-01", b"<dateOfBirth>2000-01-01</dateOfBirth>",
                                     b"null", b"true", b'"2000-01-01"', b"[]", b"{}", b"{",
                                     b"}", b"'{\"dateOfBirth\":\"2000-01-01\"}'", b"\x00" * 20])
        if kind == "padded":
            size = rng.choice([100, 4000, 4096, 4097, 5000, 20000])
            head = b'{"dateOfBirth":"' + dob.encode() + b'","pad":"'
            return kind, head + b" " * max(0, size - len(head) - 2) + b'"}'
        return kind, ('{"dateOfBirth":"%s","%s":1}' % (dob, self.rng.choice(self.UNICODE))).encode()

    # -- families: (family, data, payload, framing_ok, final, extra_ok)

    def fam_method(self):
        rng = self.rng
        kind = rng.choice(["known", "known", "lower", "mixed", "overlong", "garbage", "empty"])
        if kind == "known":
            method = rng.choice([b"GET", b"HEAD", b"PUT", b"POST", b"DELETE", b"PATCH", b"OPTIONS",
                                 b"TRACE", b"CONNECT", b"PROPFIND", b"MKCOL", b"LOCK", b"COPY",
                                 b"MOVE", b"PURGE", b"SEARCH", b"PRI", b"QUERY"])
        elif kind == "lower":
            method = rng.choice([b"get", b"head", b"put", b"delete", b"post", b"trace"])
        elif kind == "mixed":
            method = rng.choice([b"Get", b"gEt", b"PuT", b"HeAd", b"Delete"])
        elif kind == "overlong":
            n = int(math.exp(self.rng.uniform(math.log(20), math.log(9000))))
            method = "".join(rng.choices(LETTERS, k=n)).encode().upper()
        elif kind == "garbage":
            method = rng.choice([b"G@T", b"GE T", b"GET\x00", b"\x00", b"\xffGET", b"G(T)",
                                 b"PUT/", b"GET\t", b"\x7f", b"G\xc3\xa9T", b"{}", b"GET:",
                                 bytes(rng.choices(range(1, 256), k=rng.randint(1, 12)))])
        else:
            method = b""
        target = b"/hello/" + self.user().encode()
        body = b""
        headers = []
        if method.upper() in (b"PUT", b"POST", b"PATCH") or rng.random() < 0.1:
            body = b"{}"
            headers = [b"Content-Type: application/json", b"Content-Length: 2"]
        final = kind in ("garbage", "empty", "overlong") or b" " in method
        return (f"method/{kind}", build(method, target, headers, body), body, True, final, False)

    def fam_path(self):
        rng = self.rng
        kind, seg = self.hostile_segment() if rng.random() < 0.75 else ("valid", self.user().encode())
        target = self.path(seg)
        method = rng.choice([b"GET", b"GET", b"HEAD", b"PUT", b"DELETE", b"POST"])
        headers, body = [], b""
        if method == b"PUT":
            body = json.dumps({"dateOfBirth": self.valid_dob()}).encode()
            headers = [b"Content-Type: application/json", b"Content-Length: %d" % len(body)]
        data = build(method, target, headers, body)
        final = len(data) > 6000 or kind in ("utf8-raw", "bad-utf8-raw")
        return (f"path/{kind}", data, body, True, final, False)

    def fam_json(self):
        rng = self.rng
        kind, body = self.json_body()
        ct = rng.choice([b"application/json", b"application/json", b"application/json; charset=utf-8",
                         b"Application/JSON", None])
        headers = ([b"Content-Type: " + ct] if ct else []) + [b"Content-Length: %d" % len(body)]
        data = build(b"PUT", b"/hello/" + self.user().encode(), headers, body)
        return (f"json/{kind}", data, body, True, len(body) > 4096, False)

    def fam_headers(self):
        rng = self.rng
        good = rng.random() < 0.5
        dob = self.valid_dob() if good else "2999-01-01"
        body = json.dumps({"dateOfBirth": dob}).encode()
        n = len(body)
        ct = b"Content-Type: application/json"
        cl = b"Content-Length: %d" % n
        te = b"Transfer-Encoding: chunked"
        variants = {
            # name: (headers, the bytes sent as body, whether a server may accept the framing)
            "dup-ct-same": ([ct, ct, cl], body, True),
            "dup-ct-diff": ([b"Content-Type: text/plain", ct, cl], body, True),
            "ct-charset": ([b"Content-Type: application/json;charset=UTF-8", cl], body, True),
            "ct-text": ([b"Content-Type: text/plain", cl], body, True),
            "ct-jsonx": ([b"Content-Type: application/jsonx", cl], body, True),
            "ct-suffix": ([b"Content-Type: application/merge-patch+json", cl], body, True),
            "ct-form": ([b"Content-Type: application/x-www-form-urlencoded", cl], body, True),
            "ct-multipart": ([b"Content-Type: multipart/form-data; boundary=x", cl], body, True),
            "ct-empty": ([b"Content-Type: ", cl], body, True),
            "ct-semicolon": ([b"Content-Type: application/json;", cl], body, True),
            "ct-list": ([b"Content-Type: application/json, text/plain", cl], body, True),
            "ct-8bit": ([b"Content-Type: application/json; charset=\xff", cl], body, True),
            "ct-long": ([b"Content-Type: application/" + b"j" * 8000, cl], body, True),
            "ct-nul": ([b"Content-Type: application/json\x00x", cl], body, True),
            "dup-cl-same": ([ct, cl, cl], body, True),
            "dup-cl-diff": ([ct, cl, b"Content-Length: %d" % (n + 1)], body, False),
            "cl-list-same": ([ct, b"Content-Length: %d, %d" % (n, n)], body, True),
            "cl-garbage": ([ct, b"Content-Length: " + rng.choice([b"abc", b"1e3", b"0x1c", b"12a",
                                                                  b"\xff", b"1 2", b"--1"])],
                           body, False),
            "cl-negative": ([ct, b"Content-Length: -%d" % rng.choice([1, n, 2 ** 63])], body, False),
            "cl-plus": ([ct, b"Content-Length: +%d" % n], body, False),
            "cl-overflow": ([ct, b"Content-Length: 99999999999999999999999999"], body, False),
            "cl-empty": ([ct, b"Content-Length: "], body, False),
            "cl-ows": ([ct, b"Content-Length:   %d  " % n], body, True),
            "cl-leading-zero": ([ct, b"Content-Length: 000%d" % n], body, True),
            "cl-short": ([ct, b"Content-Length: %d" % (n - 5)], body, True),
            "cl-long": ([ct, b"Content-Length: %d" % (n + 50)], body, False),
            "cl-zero": ([ct, b"Content-Length: 0"], body, True),
            "te-and-cl": ([ct, te, cl], chunked(body), True),
            "te-gzip": ([ct, b"Transfer-Encoding: gzip"], body, False),
            "te-identity": ([ct, b"Transfer-Encoding: identity", cl], body, False),
            "te-gzip-chunked": ([ct, b"Transfer-Encoding: gzip, chunked"], chunked(body), True),
            "te-chunked-gzip": ([ct, b"Transfer-Encoding: chunked, gzip"], chunked(body), False),
            "te-twice": ([ct, te, te], chunked(body), True),
            "te-upper": ([ct, b"Transfer-Encoding: CHUNKED"], chunked(body), True),
            "te-empty": ([ct, b"Transfer-Encoding: "], body, False),
            "te-garbage": ([ct, b"Transfer-Encoding: chunked\x00"], chunked(body), False),
            "expect-100": ([ct, cl, b"Expect: 100-continue"], body, True),
            "expect-garbage": ([ct, cl, b"Expect: " + rng.choice([b"200-ok", b"100-continue2",
                                                                  b"\xff", b"x" * 100])],
                               body, False),
            "expect-100-too-large": ([ct, b"Content-Length: 5000", b"Expect: 100-continue"],
                                     b" " * 5000, False),
            "host-missing": ([ct, cl], body, False),
            "host-dup": ([HOST, ct, cl], body, False),
            "host-garbage": ([ct, cl], body, False),
            "host-long": ([ct, cl], body, True),
            "obs-fold": ([ct, b" folded", cl], body, False),
            "no-colon": ([ct, b"NoColonHere", cl], body, False),
            "space-before-colon": ([b"Content-Type : application/json", cl], body, False),
            "name-8bit": ([ct, b"X-\xff: y", cl], body, False),
            "value-8bit": ([ct, b"X-Note: \xe9\xff", cl], body, True),
            "value-nul": ([ct, b"X-Note: a\x00b", cl], body, False),
            "many-headers": ([ct, cl] + [b"X-H%d: v" % i for i in range(rng.choice([50, 101, 300]))],
                             body, True),
            "long-header": ([ct, cl, b"X-Long: " + b"v" * rng.choice([4000, 8180, 8200, 20000])],
                            body, True),
            "conn-close": ([ct, cl, b"Connection: close"], body, True),
            "conn-garbage": ([ct, cl, b"Connection: keep-alive, close, \xff, upgrade"], body, True),
            "upgrade-h2c": ([ct, cl, b"Connection: Upgrade, HTTP2-Settings", b"Upgrade: h2c",
                             b"HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA"], body, True),
            "upgrade-ws": ([ct, cl, b"Connection: Upgrade", b"Upgrade: websocket",
                            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="], body, True),
            "range": ([ct, cl, b"Range: bytes=0-1,-1,5-", b"If-Match: *", b"If-None-Match: *"],
                      body, True),
            "x-http-method": ([ct, cl, b"X-HTTP-Method-Override: DELETE"], body, True),
        }
        name = rng.choice(sorted(variants))
        headers, sent, framing_ok = variants[name]
        host = name not in ("host-missing", "host-garbage", "host-long")
        if name == "host-garbage":
            headers = [b"Host: " + rng.choice([b"a b", b"\xff", b"[::1", b"x:y:z", b"a/b",
                                               b"a@b"])] + headers
        if name == "host-long":
            headers = [b"Host: " + b"a" * 5000] + headers
        payload = body
        if name == "cl-short":
            payload = body[:n - 5]
        elif name == "cl-zero":
            payload = b""
        elif name == "expect-100-too-large":
            payload = sent
        data = build(b"PUT", b"/hello/" + self.user().encode(), headers, sent, host=host)
        extra_ok = name in ("cl-short", "cl-zero", "te-gzip", "te-identity", "te-empty",
                            "cl-garbage", "cl-negative", "cl-plus", "cl-overflow", "cl-empty",
                            "dup-cl-diff", "te-garbage")
        return (f"headers/{name}", data, payload, framing_ok, True, extra_ok)

    def fam_chunked(self):
        rng = self.rng
        kind, payload = (("valid", json.dumps({"dateOfBirth": self.valid_dob()}).encode())
                         if rng.random() < 0.5 else self.json_body())
        if len(payload) > 3000 and rng.random() < 0.7:
            payload = payload[:3000]
        variants = ["plain", "plain", "small-chunks", "ext", "trailer", "upper", "zeros",
                    "last-ext", "over-limit", "bad-hex", "negative", "overflow", "no-crlf",
                    "short-data", "no-last-chunk", "bare-lf", "size-space", "huge-ext",
                    "trailer-garbage", "data-after-end", "empty"]
        v = rng.choice(variants)
        framing_ok, final, extra_ok, send_payload = True, False, False, payload
        if v == "plain":
            enc = chunked(payload)
        elif v == "small-chunks":
            enc = chunked(payload, random_sizes(rng, len(payload)))
        elif v == "ext":
            enc = chunked(payload, random_sizes(rng, len(payload)), ext=b";name=value;x")
        elif v == "trailer":
            enc = chunked(payload, trailer=b"X-Trailer: 1\r\n")
        elif v == "upper":
            enc = chunked(payload, upper=True)
        elif v == "zeros":
            enc = chunked(payload, zeros=3)
        elif v == "last-ext":
            enc = chunked(payload)[:-5] + b"0;last=1\r\n\r\n"
        elif v == "over-limit":
            send_payload = payload + b" " * (4097 - len(payload) + rng.randint(0, 20000))
            enc = chunked(send_payload, random_sizes(rng, len(send_payload)))
            final = True
        elif v == "empty":
            send_payload = b""
            enc = b"0\r\n\r\n"
        else:
            framing_ok, final = False, True
            if v == "bad-hex":
                enc = b"zz\r\n" + payload + b"\r\n0\r\n\r\n"
            elif v == "negative":
                enc = b"-%x\r\n" % len(payload) + payload + b"\r\n0\r\n\r\n"
            elif v == "overflow":
                enc = b"f" * rng.choice([17, 20, 40]) + b"\r\n" + payload + b"\r\n0\r\n\r\n"
            elif v == "no-crlf":
                enc = b"%x\r\n" % len(payload) + payload + b"0\r\n\r\n"
            elif v == "short-data":
                enc = b"%x\r\n" % (len(payload) + 10) + payload + b"\r\n0\r\n\r\n"
            elif v == "no-last-chunk":
                enc = b"%x\r\n" % len(payload) + payload + b"\r\n"
            elif v == "bare-lf":
                enc = b"%x\n" % len(payload) + payload + b"\n0\n\n"
            elif v == "size-space":
                framing_ok = True  # BWS before a chunk extension: servers differ
                enc = b"%x \r\n" % len(payload) + payload + b"\r\n0\r\n\r\n"
            elif v == "huge-ext":
                enc = b"%x;" % len(payload) + b"e" * 20000 + b"\r\n" + payload + b"\r\n0\r\n\r\n"
            elif v == "trailer-garbage":
                framing_ok = True  # the body is complete before the trailer
                enc = chunked(payload, trailer=b"no colon here\r\n")
            else:  # data-after-end
                framing_ok, extra_ok = True, True
                enc = chunked(payload) + b"GARBAGE /after HTTP/1.1\r\n\r\n"
        headers = [b"Content-Type: application/json", b"Transfer-Encoding: chunked"]
        data = build(b"PUT", b"/hello/" + self.user().encode(), headers, enc)
        return (f"chunked/{v}/{kind}", data, send_payload, framing_ok, final, extra_ok)

    def fam_body_on_get(self):
        rng = self.rng
        method = rng.choice([b"GET", b"GET", b"HEAD", b"DELETE", b"OPTIONS", b"TRACE"])
        body = json.dumps({"dateOfBirth": self.valid_dob()}).encode()
        if rng.random() < 0.5:
            headers, sent = [b"Content-Type: application/json", b"Content-Length: %d" % len(body)], body
        else:
            headers, sent = [b"Content-Type: application/json", b"Transfer-Encoding: chunked"], chunked(body)
        data = build(method, b"/hello/" + self.user().encode(), headers, sent)
        return (f"body-on-{method.decode().lower()}", data, sent, True, True, False)

    def fam_oversize(self):
        rng = self.rng
        kind = rng.choice(["cl-4097", "cl-5000", "cl-64k", "cl-huge-short", "cl-max-int",
                           "chunked-8k"])
        head = b'{"dateOfBirth":"' + self.valid_dob().encode() + b'","pad":"'
        if kind.startswith("cl-") and kind not in ("cl-huge-short", "cl-max-int"):
            size = {"cl-4097": 4097, "cl-5000": 5000, "cl-64k": 65536}[kind]
            body = head + b" " * (size - len(head) - 2) + b'"}'
            headers, sent = [b"Content-Type: application/json", b"Content-Length: %d" % size], body
        elif kind == "cl-huge-short":
            body = head
            headers, sent = [b"Content-Type: application/json", b"Content-Length: 100000000"], body
        elif kind == "cl-max-int":
            body = head
            headers, sent = ([b"Content-Type: application/json",
                              b"Content-Length: 9223372036854775807"], body)
        else:
            body = head + b" " * 8000 + b'"}'
            headers, sent = ([b"Content-Type: application/json", b"Transfer-Encoding: chunked"],
                             chunked(body, [1000] * 9))
        data = build(b"PUT", b"/hello/" + self.user().encode(), headers, sent)
        return (f"oversize/{kind}", data, body, False, True, False)

    def fam_version(self):
        rng = self.rng
        target = b"/hello/" + self.user().encode()
        kind = rng.choice(["1.0", "1.0-keepalive", "0.9", "0.9-put", "2.0", "1.2", "9.9", "lower",
                           "short", "long", "leading-zero", "extra", "pri", "0.9-head"])
        if kind == "1.0":
            data = build(b"GET", target, [], version=b"HTTP/1.0", host=rng.random() < 0.5)
        elif kind == "1.0-keepalive":
            data = build(b"GET", target, [b"Connection: keep-alive"], version=b"HTTP/1.0")
        elif kind == "0.9":
            data = b"GET " + target + b"\r\n"
        elif kind == "0.9-put":
            data = b"PUT " + target + b"\r\n\r\n"
        elif kind == "0.9-head":
            data = b"HEAD " + target + b"\r\n\r\n"
        elif kind == "pri":
            data = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
        else:
            version = {"2.0": b"HTTP/2.0", "1.2": b"HTTP/1.2", "9.9": b"HTTP/9.9",
                       "lower": b"http/1.1", "short": b"HTTP/1", "long": b"HTTP/1.1.1",
                       "leading-zero": b"HTTP/01.1", "extra": b"HTTP/1.1 x"}[kind]
            data = build(rng.choice([b"GET", b"HEAD"]), target, [], version=version)
        return (f"version/{kind}", data, b"", True, True, False)

    def fam_garbage(self):
        rng = self.rng
        kind = rng.choice(["random", "random", "crlf-only", "tls", "ssh", "lone-method",
                           "no-eol", "tabs", "leading-space", "bare-lf", "nul-in-line",
                           "long-line", "spaces", "pipelined-garbage"])
        user = self.user().encode()
        if kind == "random":
            data = bytes(rng.choices(range(256), k=rng.randint(1, 300)))
        elif kind == "crlf-only":
            data = b"\r\n" * rng.randint(1, 20)
        elif kind == "tls":
            data = bytes.fromhex("16030100a5010000a10303") + bytes(rng.choices(range(256), k=64))
        elif kind == "ssh":
            data = b"SSH-2.0-OpenSSH_9.2\r\n"
        elif kind == "lone-method":
            data = b"GET\r\n\r\n"
        elif kind == "no-eol":
            data = b"GET /hello/" + user + b" HTTP/1.1"
        elif kind == "tabs":
            data = b"GET\t/hello/" + user + b"\tHTTP/1.1\r\nHost: x\r\n\r\n"
        elif kind == "leading-space":
            data = b" GET /hello/" + user + b" HTTP/1.1\r\nHost: x\r\n\r\n"
        elif kind == "bare-lf":
            data = b"GET /hello/" + user + b" HTTP/1.1\nHost: x\n\n"
        elif kind == "nul-in-line":
            data = b"GET /hello/" + user + b"\x00 HTTP/1.1\r\nHost: x\r\n\r\n"
        elif kind == "long-line":
            data = b"GET /hello/" + b"a" * rng.randint(8200, 12000) + b" HTTP/1.1\r\nHost: x\r\n\r\n"
        elif kind == "spaces":
            data = b"GET  /hello/" + user + b"  HTTP/1.1\r\nHost: x\r\n\r\n"
        else:
            data = (build(b"GET", b"/hello/" + user) + b"\x16\x03\x01garbage\r\n\r\n")
        return (f"garbage/{kind}", data, b"", True, True, kind == "pipelined-garbage")

    FAMILIES = [("fam_method", 12), ("fam_path", 22), ("fam_json", 24), ("fam_headers", 14),
                ("fam_chunked", 12), ("fam_body_on_get", 4), ("fam_oversize", 3),
                ("fam_version", 4), ("fam_garbage", 5)]

    def one(self, index):
        total = sum(w for _, w in self.FAMILIES)
        while True:
            pick = self.rng.uniform(0, total)
            for name, w in self.FAMILIES:
                pick -= w
                if pick <= 0:
                    break
            family, data, payload, framing_ok, final, extra_ok = getattr(self, name)()
            req = self.make(index, family, data, payload, framing_ok, final, extra_ok)
            # A protected user's row may change only if a refused request changes it.
            if not (req.username in self.protected and req.method == b"PUT" and req.may_succeed):
                return req

    def make(self, index, family, data, payload, framing_ok, final, extra_ok, pieces=None):
        method = method_token(data)
        scope = scope_of(data)
        line = split_request_line(data)[3]
        if method == b"HEAD" and (len(line) > LINE_LIMIT + 1 or b"\x00" in line):
            method = b"HEAD?"  # refused before the method is known: the answer has a body
        user = username_of(data) if scope in ("under", "http09") else None
        may, dob = False, None
        if user is not None and method in (b"GET", b"HEAD"):
            may = True
        elif user is not None and method == b"PUT" and framing_ok and media_type_ok(data):
            dob = reference_dob(payload, self.today)
            may = dob is not None
            if dob == "?":
                m = re.search(rb'"dateOfBirth":"([0-9]{4}-[0-9]{2}-[0-9]{2})"', payload)
                dob = m.group(1).decode() if m else None
        if scope != "under" and not final:
            final = True  # a request Apache may not parse never shares a connection
        return FloodRequest(index, family, data, method, scope, user, final, may, dob,
                            extra_ok=extra_ok, pieces=pieces or [])

    def slow(self, index):
        """A request dribbled in small pieces with short sleeps (about a
        second in all)."""
        rng = self.rng
        user = self.user().encode()
        body = json.dumps({"dateOfBirth": self.valid_dob()}).encode()
        kind = rng.choice(["valid-put", "invalid-body", "chunked", "over-limit", "headers-only",
                           "get"])
        ct = b"Content-Type: application/json"
        if kind == "valid-put":
            data, payload, ok = build(b"PUT", b"/hello/" + user, [ct, b"Content-Length: %d" % len(body)], body), body, True
        elif kind == "invalid-body":
            bad = body[:-3]
            data, payload, ok = build(b"PUT", b"/hello/" + user, [ct, b"Content-Length: %d" % len(bad)], bad), bad, True
        elif kind == "chunked":
            data, payload, ok = build(b"PUT", b"/hello/" + user, [ct, b"Transfer-Encoding: chunked"],
                                      chunked(body, [3] * 20)), body, True
        elif kind == "over-limit":
            big = body + b" " * 4200
            data, payload, ok = build(b"PUT", b"/hello/" + user, [ct, b"Transfer-Encoding: chunked"],
                                      chunked(big, [700] * 8)), big, True
        elif kind == "headers-only":
            data, payload, ok = build(b"GET", b"/hello/" + user, [b"X-Slow-%d: %s" % (i, b"v" * 20)
                                                                   for i in range(10)]), b"", True
        else:
            data, payload, ok = build(b"GET", b"/hello/" + user), b"", True
        pieces = []
        pos = 0
        budget = 1.0
        while pos < len(data):
            n = rng.randint(1, max(1, len(data) // 40))
            delay = min(budget / 40, rng.uniform(0.005, 0.03))
            pieces.append((data[pos:pos + n], delay))
            pos += n
        return self.make(index, f"slow/{kind}", data, payload, ok, True, False, pieces)


def generate(seed=DEFAULT_SEED, count=10_200, users=("alice",), slow=6, today=None,
             protected=()):
    """count + slow requests from seed. users: the usernames the flood aims
    at (besides random ones); of those, protected ones only get requests
    that must be refused (never a PUT that may succeed). today: the UTC date
    that decides which dates are in the past (for the reference only; the
    bytes do not depend on it, except through protected)."""
    today = today or datetime.now(timezone.utc).date()
    gen = Gen(random.Random(seed), list(users), today, protected)
    requests = [gen.one(i) for i in range(count)]
    requests += [gen.slow(count + i) for i in range(slow)]
    return requests


# ---- sending ------------------------------------------------------------------------------

class ProtocolError(Exception):
    pass


@dataclass
class Response:
    status: int | None     # None: an HTTP/0.9 answer (no status line, a bare body)
    version: bytes
    reason: bytes
    headers: list
    body: bytes
    interim: int = 0       # 1xx answers before this one

    def header(self, name):
        name = name.lower().encode() if isinstance(name, str) else name.lower()
        values = [v for n, v in self.headers if n.lower() == name]
        return values[-1] if values else None

    def header_count(self, name):
        name = name.lower().encode()
        return sum(1 for n, _ in self.headers if n.lower() == name)

    @property
    def media_type(self):
        ct = self.header("Content-Type")
        return ct.split(b";")[0].strip().lower() if ct is not None else None

    @property
    def closes(self):
        conn = (self.header("Connection") or b"").lower()
        if b"close" in conn:
            return True
        return self.version == b"HTTP/1.0" and b"keep-alive" not in conn

    def short(self):
        return (f"{self.status} {self.reason.decode('latin-1')} "
                f"ct={self.header('Content-Type')!r} body={self.body[:200]!r}")


@dataclass
class Outcome:
    request: FloodRequest
    responses: list = field(default_factory=list)
    error: str | None = None     # "timeout", "reset", a protocol error...
    reset: bool = False
    desync: bytes = b""          # bytes waiting on a kept connection before the next request
    elapsed: float = 0.0

    @property
    def first(self):
        return self.responses[0] if self.responses else None


class Reader:
    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray()
        self.eof = False
        self.reset = False

    def fill(self):
        if self.eof:
            return False
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            self.reset = True
            data = b""
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def until(self, delim, limit=1 << 20):
        start = 0
        while True:
            i = self.buf.find(delim, start)
            if i >= 0:
                out = bytes(self.buf[:i + len(delim)])
                del self.buf[:i + len(delim)]
                return out
            start = max(0, len(self.buf) - len(delim) + 1)
            if len(self.buf) > limit:
                raise ProtocolError(f"no {delim!r} within {limit} bytes")
            if not self.fill():
                raise ProtocolError(f"connection closed before {delim!r}: {bytes(self.buf[:200])!r}")

    def exact(self, n):
        while len(self.buf) < n:
            if not self.fill():
                raise ProtocolError(f"connection closed {n - len(self.buf)} bytes short of a body")
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def to_eof(self, limit=1 << 24):
        while self.fill():
            if len(self.buf) > limit:
                raise ProtocolError("answer too long")
        out = bytes(self.buf)
        self.buf.clear()
        return out


def read_response(reader, method):
    """One final response (1xx answers skipped and counted), or None at EOF
    before any byte."""
    interim = 0
    while True:
        while len(reader.buf) < 5 and reader.fill():
            pass
        if not reader.buf:
            return None
        if not reader.buf.startswith(b"HTTP/"):
            return Response(None, b"", b"", [], reader.to_eof(), interim)
        head = reader.until(b"\r\n\r\n", 1 << 16)
        lines = head[:-4].split(b"\r\n")
        parts = lines[0].split(b" ", 2)
        if len(parts) < 2 or not parts[1].isdigit():
            raise ProtocolError(f"bad status line {lines[0]!r}")
        status = int(parts[1])
        headers = []
        for line in lines[1:]:
            if b":" not in line:
                raise ProtocolError(f"bad header line {line!r}")
            name, value = line.split(b":", 1)
            headers.append((name.strip(), value.strip()))
        resp = Response(status, parts[0], parts[2] if len(parts) > 2 else b"", headers, b"",
                        interim)
        if 100 <= status < 200:
            interim += 1
            continue
        te = (resp.header("Transfer-Encoding") or b"").lower()
        cl = resp.header("Content-Length")
        if method == b"HEAD" or status in (204, 304):
            pass
        elif b"chunked" in te:
            body = b""
            while True:
                size_line = reader.until(b"\r\n", 4096)
                size = int(size_line.split(b";")[0].strip(), 16)
                if size == 0:
                    while reader.until(b"\r\n", 65536) != b"\r\n":
                        pass
                    break
                body += reader.exact(size)
                reader.exact(2)
            resp.body = body
        elif cl is not None:
            resp.body = reader.exact(int(cl))
        else:
            resp.body = reader.to_eof()
        return resp


class Sender:
    """Sends a list of requests over `workers` kept-alive connections (a new
    one when the server closes), each request marked final on a fresh
    connection of its own, slow ones from threads of their own."""

    def __init__(self, port, timeout=12.0, deadline=120.0):
        self.port = port
        self.timeout = timeout
        self.deadline = time.monotonic() + deadline

    def connect(self):
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=self.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    def send_final(self, req):
        out = Outcome(req)
        started = time.monotonic()
        sock = self.connect()
        reader = Reader(sock)
        try:
            try:
                if req.pieces:
                    for piece, pause in req.pieces:
                        sock.sendall(piece)
                        time.sleep(pause)
                else:
                    sock.sendall(req.data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # answered early and closed: read the answer
            try:
                sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            method = req.method
            while True:
                resp = read_response(reader, method)
                if resp is None:
                    break
                out.responses.append(resp)
                method = b"GET"
                if resp.status is None:
                    break
        except socket.timeout:
            out.error = "timeout"
        except (ProtocolError, ValueError) as e:
            out.error = f"protocol: {e}"
        except OSError as e:
            out.error = f"socket: {e!r}"
        finally:
            out.reset = reader.reset
            sock.close()
        out.elapsed = time.monotonic() - started
        return out

    def _pending(self, sock):
        """None when nothing waits on the kept connection; b"" when the server
        has closed it; else the bytes that wait (an answer nobody asked for)."""
        try:
            sock.setblocking(False)
            return sock.recv(65536, socket.MSG_PEEK)
        except (BlockingIOError, InterruptedError):
            return None
        except OSError:
            return b""
        finally:
            sock.settimeout(self.timeout)

    def run_worker(self, requests, results):
        sock = reader = last = None
        served = 0
        for req in requests:
            if time.monotonic() > self.deadline:
                results[req.index] = Outcome(req, error="not sent: the flood's deadline passed")
                continue
            if req.final:
                results[req.index] = self.send_final(req)
                continue
            out = Outcome(req)
            started = time.monotonic()
            for attempt in (0, 1):
                if sock is not None:
                    pending = self._pending(sock)
                    if pending:
                        last.desync = pending  # the previous request left an extra answer
                    if pending is not None:
                        sock.close()
                        sock = None
                if sock is None:
                    sock = self.connect()
                    reader, served = Reader(sock), 0
                fresh = served == 0
                try:
                    sock.sendall(req.data)
                    resp = read_response(reader, req.method)
                except (BrokenPipeError, ConnectionResetError):
                    resp = None
                except socket.timeout:
                    out.error = "timeout"
                except (ProtocolError, ValueError) as e:
                    out.error = f"protocol: {e}"
                if out.error:
                    sock.close()
                    sock = None
                    break
                if resp is None:
                    sock.close()
                    sock = None
                    if not fresh and attempt == 0:
                        continue  # the server closed an idle kept connection: again
                    out.error = "closed without an answer"
                    break
                out.responses.append(resp)
                served += 1
                if resp.closes or resp.status is None or reader.eof:
                    sock.close()
                    sock = None
                break
            out.reset = reader.reset if reader else False
            out.elapsed = time.monotonic() - started
            results[req.index] = last = out
        if sock is not None:
            pending = self._pending(sock)
            if pending:
                last.desync = pending
            sock.close()

    def run(self, requests, workers=4):
        results = {}
        fast = [r for r in requests if not r.slow]
        slow = [r for r in requests if r.slow]
        lanes = [fast[i::workers] for i in range(workers)] + [slow[i::3] for i in range(3)]
        errors = []

        def lane(reqs):
            try:
                self.run_worker(reqs, results)
            except Exception as e:  # noqa: BLE001 - reported by the test
                errors.append(repr(e))

        threads = [threading.Thread(target=lane, args=(reqs,), daemon=True) for reqs in lanes if reqs]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=max(1.0, self.deadline - time.monotonic() + 30))
        for req in requests:
            if req.index not in results:
                results[req.index] = Outcome(req, error="no result: " + "; ".join(errors))
        return [results[r.index] for r in requests]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--count", type=int, default=10_200)
    parser.add_argument("--users", default="floodAlice,floodBob,floodCarol,floodDave,floodEve,"
                                           "floodMallory,floodTrent,floodZed")
    parser.add_argument("--protected", default="floodEve,floodMallory,floodTrent,floodZed")
    parser.add_argument("--show", type=int, required=True, help="index of the request")
    parser.add_argument("--port", type=int, help="send it to 127.0.0.1:PORT too")
    args = parser.parse_args()
    reqs = generate(args.seed, args.count, args.users.split(","),
                    protected=args.protected.split(","))
    req = reqs[args.show]
    print(req.show(limit=1 << 30))
    if args.port:
        out = Sender(args.port).send_final(req)
        for resp in out.responses:
            print(resp.short())
        if out.error:
            print("error:", out.error)


if __name__ == "__main__":
    main()
