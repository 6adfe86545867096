"""The fleet of tests/fleet: one fleet (fleet/fleet-up) for the session,
named `test` and on addresses of its own (Galera 127.0.11.1-3, Apache
127.0.21.1-2, the front on a free port of 127.0.0.1), so a fleet started by
`make fleet` (127.0.10.x, 127.0.20.x, port 8090) can keep running beside it.
It is stopped at the end of the session, whatever happened (fleet/fleet-down,
which leaves no process).

As root, the fleet runs from a copy of the checkout in a fresh 0700
directory (tempfile.mkdtemp), the way a clone in /root or in a `mktemp -d`
sits: the Galera nodes run as the mysql user, which cannot enter it, so every
fleet test also proves that fleet/fleet-up puts their state where they can
reach it (and that fleet/fleet-down removes it). The copy is removed at the
end unless a test failed (its logs then stay, the path is printed).
FLEET_TEST_IN_CHECKOUT=1 runs the fleet from the checkout itself.

FLEET_TEST_KEEP=1 (for working on the tests): reuse the test fleet if it is
already up and leave it running at the end (make fleet-stop stops it); the
fleet then runs from the checkout."""
import os
import shutil
import tempfile
import time

from pathlib import Path

import pytest

import fleetlib as fl
from fleetlib import usable
import hellotest as ht


def pytest_sessionstart(session):
    if not ht.MODULE.exists():
        pytest.exit(f"{ht.MODULE} is missing: run `make module` first", returncode=2)


def _private_copy():
    """A copy of what fleet/fleet-up uses, in a new 0700 directory."""
    top = Path(tempfile.mkdtemp(prefix="mod_hello-fleet-src."))
    assert top.stat().st_mode & 0o777 == 0o700
    src = top / "p"
    for part in ("fleet", "scripts", "sql", "conf"):
        shutil.copytree(fl.REPO / part, src / part, symlinks=True)
    (src / "build").mkdir()
    shutil.copy2(ht.MODULE, src / "build" / "mod_hello.so")
    return top, src


@pytest.fixture(scope="session")
def fleet(request):
    keep = os.environ.get("FLEET_TEST_KEEP") == "1"
    top, src = None, fl.REPO
    if os.geteuid() == 0 and not keep and os.environ.get("FLEET_TEST_IN_CHECKOUT") != "1":
        top, src = _private_copy()
        print(f"\nfleet from a 0700 copy of the checkout: {src}")
    f = fl.Fleet(
        os.environ.get("FLEET_TEST_NAME", "test"), src=src,
        FLEET_DB_NET=os.environ.get("FLEET_TEST_DB_NET", "127.0.11"),
        FLEET_WEB_NET=os.environ.get("FLEET_TEST_WEB_NET", "127.0.21"),
        FLEET_CACHE_ADDR=os.environ.get("FLEET_TEST_CACHE_ADDR", "127.0.31.1"),
        FLEET_PORT=os.environ.get("FLEET_TEST_PORT", str(ht.free_port())),
        FLEET_SKIP_BUILD="1",
    )
    t0 = time.monotonic()
    reused = False
    if keep and (f.dir / "fleet.env").exists():
        f.load_env()
        try:
            reused = f.cluster_whole() and all(usable(s) for s, _ in f.members().values())
        except Exception:  # noqa: BLE001 - not up: start afresh
            reused = False
    if not reused:
        f.down()  # what a killed earlier run may have left
        if src != fl.REPO:
            fl.Fleet(f.name).down()  # the same, from the checkout
    try:
        if not reused:
            f.up()
        if top is not None:
            assert top not in f.db_root.parents, \
                f"the Galera nodes' state {f.db_root} is in the 0700 directory {top}"
        f.up_seconds = time.monotonic() - t0
        print(f"\nfleet {f.name} up in {f.up_seconds:.1f} s: front http://{f.front[0]}:"
              f"{f.front[1]}, Apache " + ", ".join(
                  f"{f.web_addr(n)}:{f.web_port()}" for n in range(1, f.web_nodes + 1)) +
              f", Galera {f.env['FLEET_DB_NET']}.1-{f.db_nodes}")
        yield f
    finally:
        if keep:
            return
        db_root = f.db_root
        proc = f.down()
        left = [p for p in os.listdir("/proc")
                if p.isdigit() and (_names(p, f.dir) or _names(p, db_root))]
        assert proc.returncode == 0 and not left, \
            f"fleet-down left processes {left}:\n{proc.stdout}{proc.stderr}"
        assert db_root == f.dir or not db_root.exists(), f"fleet-down left {db_root}"
        if top is not None:
            if request.session.testsfailed:
                print(f"\nfleet logs kept in {f.dir}")
            else:
                shutil.rmtree(top)


def _names(pid, directory):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            cmd = fh.read().replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError:
        return False
    return f"{directory}/" in cmd and "pytest" not in cmd
