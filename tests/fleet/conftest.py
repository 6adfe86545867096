"""The fleet of tests/fleet: one fleet (fleet/fleet-up) for the session,
named `test` and on addresses of its own (Galera 127.0.11.1-3, Apache
127.0.21.1-2, the front on a free port of 127.0.0.1), so a fleet started by
`make fleet` (127.0.10.x, 127.0.20.x, port 8090) can keep running beside it.
It is stopped at the end of the session, whatever happened (fleet/fleet-down,
which leaves no process).

FLEET_TEST_KEEP=1 (for working on the tests): reuse the test fleet if it is
already up and leave it running at the end (make fleet-stop stops it)."""
import os
import time

import pytest

import fleetlib as fl
from fleetlib import usable
import hellotest as ht


def pytest_sessionstart(session):
    if not ht.MODULE.exists():
        pytest.exit(f"{ht.MODULE} is missing: run `make module` first", returncode=2)


@pytest.fixture(scope="session")
def fleet():
    f = fl.Fleet(
        os.environ.get("FLEET_TEST_NAME", "test"),
        FLEET_DB_NET=os.environ.get("FLEET_TEST_DB_NET", "127.0.11"),
        FLEET_WEB_NET=os.environ.get("FLEET_TEST_WEB_NET", "127.0.21"),
        FLEET_PORT=os.environ.get("FLEET_TEST_PORT", str(ht.free_port())),
        FLEET_SKIP_BUILD="1",
    )
    keep = os.environ.get("FLEET_TEST_KEEP") == "1"
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
    try:
        if not reused:
            f.up()
        f.up_seconds = time.monotonic() - t0
        print(f"\nfleet {f.name} up in {f.up_seconds:.1f} s: front http://{f.front[0]}:"
              f"{f.front[1]}, Apache " + ", ".join(
                  f"{f.web_addr(n)}:{f.web_port()}" for n in range(1, f.web_nodes + 1)) +
              f", Galera {f.env['FLEET_DB_NET']}.1-{f.db_nodes}")
        yield f
    finally:
        if keep:
            return
        proc = f.down()
        left = [p for p in os.listdir("/proc") if p.isdigit() and _names(p, f.dir)]
        assert proc.returncode == 0 and not left, \
            f"fleet-down left processes {left}:\n{proc.stdout}{proc.stderr}"


def _names(pid, directory):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            cmd = fh.read().replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError:
        return False
    return f"{directory}/" in cmd and "pytest" not in cmd
