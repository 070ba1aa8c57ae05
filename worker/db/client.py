"""The one client factory: a real MongoDB when ``MONGODB_URL`` is set, else the embedded engine."""

from __future__ import annotations

from typing import Any

from worker.db.engine import Database, FileLock
from worker.settings import Settings

__all__ = ["get_database", "open_embedded", "open_mongodb"]

_cache: dict[tuple[str, str], Database] = {}


def open_mongodb(url: str, name: str) -> Database:
    """A real server through pymongo; one MongoClient (it is thread safe and pools connections)."""
    from pymongo import MongoClient

    def connect() -> Any:
        return MongoClient(url, tz_aware=True, serverSelectionTimeoutMS=5000)[name]

    return Database(connect, per_thread=False, lock=None, kind="mongodb")


def open_embedded(path: str, name: str) -> Database:
    """litemongo's SQLite store in folder ``path``, shared by every process that opens it."""
    import litemongo

    def connect() -> Any:
        return litemongo.connect(str(path), tz_aware=True)[name]

    from pathlib import Path

    return Database(connect, per_thread=True, lock=FileLock(Path(path) / ".lock"), kind="embedded")


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
