"""The one client factory: a real MongoDB when ``MONGODB_URL`` is set, else the embedded engine."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from worker.db import names
from worker.db.engine import Database, FileLock
from worker.settings import Settings

__all__ = [
    "DEFAULT_OPTIONS",
    "PRIMARY_READS",
    "client_options",
    "get_database",
    "open_embedded",
    "open_mongodb",
]

#: Set unless the URL names them: a write is acknowledged once a majority of the replica set
#: has it (so a failover cannot roll back a claim or an outcome), and reads go to the primary.
DEFAULT_OPTIONS: dict[str, Any] = {"w": "majority", "readPreference": "primary"}

#: Collections whose reads decide the next write (claims read back their batch, starts and
#: outcomes are fenced, agent and approval steps read their own records, token refresh leases):
#: always read from the primary, whatever ``readPreference`` the URL sets. A secondary lags, so a
#: claim read back there would find nothing and strand the batch until its lease ran out.
PRIMARY_READS = frozenset(
    {
        names.SCHEDULED_JOBS,
        names.JOB_CONTROLS,
        names.AGENT_TASKS,
        names.CAMPAIGNS,
        names.APPROVAL_REQUESTS,
        names.ZOHO_TOKENS,
        names.SOCIAL_POSTS,
        names.EMAIL_CAMPAIGNS,
        names.WEBHOOKS,
    }
)


def client_options(url: str) -> dict[str, Any]:
    """``DEFAULT_OPTIONS`` the URL does not set itself (its options win)."""
    from pymongo import uri_parser

    given = {key.lower() for key in uri_parser.parse_uri(url)["options"]}
    return {key: value for key, value in DEFAULT_OPTIONS.items() if key.lower() not in given}


_cache: dict[tuple[str, str], Database] = {}


def open_mongodb(url: str, name: str) -> Database:
    """A real server through pymongo; one MongoClient (it is thread safe and pools connections).

    Options: :data:`DEFAULT_OPTIONS` unless the URL sets them; :data:`PRIMARY_READS` always read
    from the primary.
    """
    from pymongo import MongoClient, ReadPreference

    options = client_options(url)

    def connect() -> Any:
        return MongoClient(url, tz_aware=True, serverSelectionTimeoutMS=5000, **options)[name]

    def collection(raw: Any, collection_name: str) -> Any:
        if collection_name in PRIMARY_READS:
            return raw.get_collection(collection_name, read_preference=ReadPreference.PRIMARY)
        return raw[collection_name]

    return Database(connect, per_thread=False, lock=None, kind="mongodb", collection=collection)


class _SharedConnections:
    """The ``sqlite3`` module as litemongo sees it, with connections usable from any thread.

    litemongo binds each SQLite connection to its thread, and each connection rebuilds its
    in-memory query index whenever another connection wrote. With one connection per thread,
    the scheduler, worker threads and audit thread of one process kept invalidating each other:
    measured 304 ms per job start at 2,000 jobs against 2.5 ms from one thread. One connection
    per process is safe because the engine lock serializes every operation.
    """

    def __getattr__(self, name: str) -> Any:
        return getattr(sqlite3, name)

    @staticmethod
    def connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        kwargs.setdefault("check_same_thread", False)
        return sqlite3.connect(*args, **kwargs)


def open_embedded(path: str, name: str) -> Database:
    """litemongo's SQLite store in folder ``path``, shared by every process that opens it."""
    import litemongo
    import litemongo.sqlite_store

    litemongo.sqlite_store.sqlite3 = _SharedConnections()  # type: ignore[assignment]

    def connect() -> Any:
        return litemongo.connect(str(path), tz_aware=True)[name]

    return Database(connect, per_thread=False, lock=FileLock(Path(path) / ".lock"), kind="embedded")


def get_database(settings: Settings) -> Database:
    """The database the settings name; one handle per (url or folder, name) per process."""
    if settings.mongodb_url:
        key = (settings.mongodb_url, settings.mongodb_db)
        if key not in _cache:
            _cache[key] = open_mongodb(*key)
    else:
        key = (str(settings.embedded_path.absolute()), settings.mongodb_db)
        if key not in _cache:
            _cache[key] = open_embedded(*key)
    return _cache[key]
