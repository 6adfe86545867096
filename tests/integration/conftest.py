"""Fixtures of the mod_hello integration tests: a real MariaDB and real httpd
instances, started by the pytest session in temporary directories on free
ports. See hellotest.py for the classes."""
import os
import random

import pytest

import hellotest as ht


def pytest_sessionstart(session):
    if not ht.MODULE.exists():
        pytest.exit(f"{ht.MODULE} is missing: run `make module` first", returncode=2)


def pytest_collection_modifyitems(session, config, items):
    """HELLO_TEST_ORDER=reverse or =shuffle:SEED runs the tests in another
    order, to show that they do not depend on it."""
    order = os.environ.get("HELLO_TEST_ORDER", "")
    if order == "reverse":
        items.reverse()
    elif order.startswith("shuffle:"):
        random.Random(order.split(":", 1)[1]).shuffle(items)


@pytest.fixture(scope="session")
def db(tmp_path_factory):
    """The session's MariaDB, with the schema and the `hello` user."""
    server = ht.MariaDB(tmp_path_factory.mktemp("mariadb"))
    try:
        server.create()
        yield server
    finally:
        server.stop()


@pytest.fixture
def own_db(tmp_path):
    """A MariaDB of the test's own, to stop and start at will."""
    server = ht.MariaDB(tmp_path / "mariadb")
    try:
        server.create()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def httpd(db, tmp_path_factory):
    """The session's default httpd: mod_hello at /hello with the defaults, and
    at /small with HelloMaxBodySize 64. Its local time is UTC+14, so that a
    module answering from local time instead of UTC gets caught."""
    server = ht.Httpd(tmp_path_factory.mktemp("httpd"), db=db,
                      locations={"/hello": "", "/small": "HelloMaxBodySize 64"},
                      env={"TZ": ht.TZ_EAST})
    try:
        server.start()
        yield server
    finally:
        server.stop()
    server.assert_healthy()


@pytest.fixture
def client(httpd):
    return httpd.client()


@pytest.fixture(scope="session")
def names():
    return ht.Names(seed=20250615)


@pytest.fixture
def make_httpd(tmp_path):
    """Factory for httpd instances of the test's own; all are stopped, and
    their logs checked, at the end of the test."""
    servers = []

    def make(start=True, **kwargs):
        server = ht.Httpd(tmp_path / f"httpd{len(servers)}", **kwargs)
        servers.append(server)
        if start:
            server.start()
        return server

    yield make
    for server in servers:
        server.stop()
    for server in servers:
        server.assert_healthy()


# ---- fixtures of test_operations.py and test_outages.py (defined in opstest.py) ----------

from opstest import make_ops_httpd, pinned_module, private_db  # noqa: E402,F401
