"""Fixtures for the real-client tests. scripts/clients starts the server and sets:

GEWE_CLIENTS_SERVER   http://127.0.0.1:PORT of the running `gewe serve`
GEWE_CLIENTS_BIN      the gewe binary (operator-provisioned accounts: `gewe account create`)
GEWE_DATA_DIR         the server's data directory (the CLI works on it while it runs)
GEWE_CLIENTS_SCRATCH  a scratch directory (opengewe writes ./logs on import)
"""

import os
import types

import pytest

from support import Loopback, Server


def pytest_collection_modifyitems(items):
    """Each Test* class is one flow: its steps run in the order of their numbers
    (test_01_…, test_02_…), whichever base class defines them."""
    first_seen = {}
    for index, item in enumerate(items):
        group = (item.module.__name__, item.cls) if item.cls else item.nodeid
        first_seen.setdefault(group, index)

    def key(item):
        group = (item.module.__name__, item.cls) if item.cls else item.nodeid
        return (first_seen[group], item.name if item.cls else "")

    items.sort(key=key)


def _env(name):
    value = os.environ.get(name)
    if not value:
        raise pytest.UsageError(f"{name} is not set: run the suite with scripts/clients")
    return value


@pytest.fixture(scope="session")
def server():
    return Server(
        origin=_env("GEWE_CLIENTS_SERVER").rstrip("/"),
        binary=_env("GEWE_CLIENTS_BIN"),
        data_dir=_env("GEWE_DATA_DIR"),
    )


@pytest.fixture(scope="session")
def loopback():
    """Pictures for updateHeadImg and the callback receiver, on 127.0.0.1."""
    lb = Loopback()
    yield lb
    lb.close()


@pytest.fixture(scope="class")
def flow():
    """What one flow's steps hand on to the next (token, client, appId …)."""
    return types.SimpleNamespace()
