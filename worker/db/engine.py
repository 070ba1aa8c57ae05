"""The pymongo-API handle the rest of the code uses, over a real server or the embedded engine.

:class:`Database` and :class:`Collection` wrap pymongo's (or litemongo's) objects to

* count every operation (the ``mmw_mongo_operations_total`` metric and the benchmark's
  "operations per job" come from here, not from guesses);
* on the embedded engine, hold one lock per operation: a thread lock inside the process and an
  ``fcntl`` lock on a file in the engine's folder across processes. litemongo's SQLite store is not
  atomic across processes or threads; the lock gives it MongoDB's single-document atomicity
  (measured: 3 processes claiming 1,000 jobs claimed 234 twice without it, 0 with it);
* open one client per process (per thread where ``per_thread`` asks for it), never reused
  across a fork;
* on the embedded engine, refuse what a MongoDB server refuses: every update is checked against
  :mod:`worker.db.rules` (conflicting paths, paths under null or non-object parents; the matched
  documents are read inside the lock when a nested path needs them) and raises pymongo's
  ``WriteError`` with the server's code; a sparse unique index is created with MongoDB's
  semantics (a document holding an explicit null is indexed, so two nulls collide).

``find`` and ``aggregate`` return lists (evaluated inside the lock); pass ``sort``, ``limit`` and
``projection`` as keyword arguments rather than chaining cursor methods.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any

from pymongo.errors import WriteError

from worker.db import rules

__all__ = ["Collection", "Database", "FileLock", "OperationCounter", "operations"]


class OperationCounter:
    """Process-wide count of MongoDB operations by (collection, operation); thread safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[tuple[str, str]] = Counter()
        self.listeners: list[Callable[[str, str], None]] = []
        #: When true, each call's seconds are summed (the benchmark's "time in the engine").
        self.timing = False
        self._seconds: Counter[tuple[str, str, str]] = Counter()

    def record(self, collection: str, operation: str) -> None:
        with self._lock:
            self._counts[(collection, operation)] += 1
        for listener in self.listeners:
            listener(collection, operation)

    def total(self) -> int:
        with self._lock:
            return sum(self._counts.values())

    def snapshot(self) -> dict[tuple[str, str], int]:
        with self._lock:
            return dict(self._counts)

    def record_time(self, collection: str, operation: str, waited: float, held: float) -> None:
        """Seconds one call waited for the engine lock and spent inside it (``timing`` on)."""
        with self._lock:
            self._seconds[(collection, operation, "wait")] += waited
            self._seconds[(collection, operation, "engine")] += held

    def seconds(self) -> dict[tuple[str, str, str], float]:
        """Summed seconds by (collection, operation, "wait" or "engine") since timing began."""
        with self._lock:
            return dict(self._seconds)


#: The counter every Collection reports to.
operations = OperationCounter()


class FileLock:
    """One lock for every operation on an embedded engine folder, across threads and processes."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._thread_lock = threading.Lock()
        self._fd: int | None = None
        self._pid: int | None = None

    def _file(self) -> int:
        # A forked child must not share the parent's descriptor (flock is per open file).
        if self._fd is None or self._pid != os.getpid():
            self._path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o644)
            self._pid = os.getpid()
            self._thread_lock = threading.Lock()
        return self._fd

    @contextmanager
    def hold(self) -> Iterator[None]:
        fd = self._file()
        with self._thread_lock:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)


_LISTING = {"find", "aggregate", "list_indexes", "distinct"}
_UPDATES = {"update_one", "update_many", "find_one_and_update"}


def _refuse_update(raw: Any, operation: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """Raise ``WriteError`` (the server's code) when MongoDB would refuse this update.

    The matched documents are read only when a nested path or a type-checked operator needs
    them; the caller holds the engine lock, so they are the documents the update will see.
    """
    query = args[0] if args else kwargs.get("filter", {})
    update = args[1] if len(args) > 1 else kwargs.get("update")
    violation = rules.check_update(update)
    if violation is None and isinstance(update, Mapping) and rules.needs_document(update):
        positional = len(args) > 2 and operation != "find_one_and_update"
        upsert = kwargs.get("upsert", args[2] if positional else False)
        # Only the top-level fields the paths go through (measured: a third of a whole read).
        fields = {path.split(".", 1)[0]: 1 for _, path in rules.update_paths(update)}
        if operation == "update_many":
            documents = list(raw.find(query, fields))
        else:
            found = raw.find_one(query, fields, sort=kwargs.get("sort"))
            documents = [] if found is None else [found]
        for document in documents:
            violation = violation or rules.check_document(update, document)
        if not documents and upsert:
            violation = rules.check_document(update, rules.upsert_seed(query), inserting=True)
    if violation is not None:
        details = {"code": violation.code, "errmsg": violation.message, "index": 0}
        raise WriteError(violation.message, violation.code, details)


def _mongodb_index_options(keys: list[tuple[str, Any]], options: dict[str, Any]) -> dict[str, Any]:
    """A sparse unique index as litemongo must be told to get MongoDB's behaviour.

    litemongo leaves documents whose key fields are null out of a sparse index; MongoDB leaves
    out only documents lacking every key field, so two explicit nulls collide there. A partial
    index on "has one of the fields" is MongoDB's sparse index exactly.
    """
    if not (options.get("sparse") and options.get("unique")):
        return options
    present = [{field: {"$exists": True}} for field, _ in keys]
    options = {k: v for k, v in options.items() if k != "sparse"}
    options["partialFilterExpression"] = present[0] if len(present) == 1 else {"$or": present}
    return options


class Collection:
    """A pymongo collection (or the calling thread's embedded one): counted; locked if embedded."""

    def __init__(self, database: Database, name: str) -> None:
        self._database = database
        self.name = name

    def _raw(self) -> Any:
        return self._database.raw_collection(self.name)

    def __getattr__(self, operation: str) -> Callable[..., Any]:
        if operation.startswith("_"):
            raise AttributeError(operation)

        def call(*args: Any, **kwargs: Any) -> Any:
            operations.record(self.name, operation)
            timing = operations.timing
            began = time.perf_counter() if timing else 0.0
            with self._database.lock():
                entered = time.perf_counter() if timing else 0.0
                try:
                    raw = self._raw()
                    if self._database.kind == "embedded":
                        args, kwargs = self._as_mongodb(raw, operation, args, kwargs)
                    result = getattr(raw, operation)(*args, **kwargs)
                    if operation in _LISTING and not isinstance(result, list):
                        result = list(result)
                    return result
                finally:
                    if timing:
                        held = time.perf_counter() - entered
                        operations.record_time(self.name, operation, entered - began, held)

        call.__name__ = operation
        return call

    @staticmethod
    def _as_mongodb(
        raw: Any, operation: str, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """The embedded engine behaving as a server: refused updates, MongoDB's sparse."""
        if operation in _UPDATES:
            _refuse_update(raw, operation, args, kwargs)
        elif operation == "create_index" and kwargs.get("sparse") and kwargs.get("unique"):
            keys = args[0] if args else kwargs.pop("keys")
            if isinstance(keys, str):
                keys = [(keys, 1)]
            kwargs = _mongodb_index_options(keys, kwargs)
            args = (keys,)
        return args, kwargs

    def __repr__(self) -> str:
        return f"Collection({self.name!r})"


class Database:
    """A named database; ``db.scheduled_jobs`` or ``db["scheduled_jobs"]`` give a Collection.

    ``connect`` makes the underlying pymongo-API database; it is called once per process for a
    real server and once per thread for the embedded engine (``per_thread=True``).
    """

    def __init__(
        self,
        connect: Callable[[], Any],
        *,
        per_thread: bool,
        lock: FileLock | None,
        kind: str,
        collection: Callable[[Any, str], Any] | None = None,
    ) -> None:
        self._connect = connect
        self._collection = collection
        self._collections: dict[tuple[int, str], Any] = {}
        self._per_thread = per_thread
        self._lock = lock
        self._local = threading.local()
        self._shared: Any = None
        self._shared_pid: int | None = None
        self._shared_guard = threading.Lock()
        self.kind = kind

    def raw(self) -> Any:
        """The pymongo-API database object for the calling thread."""
        if self._per_thread:
            db = getattr(self._local, "db", None)
            if db is None or getattr(self._local, "pid", None) != os.getpid():
                db = self._local.db = self._connect()
                self._local.pid = os.getpid()
            return db
        if self._shared is None or self._shared_pid != os.getpid():  # not across a fork
            with self._shared_guard:
                if self._shared is None or self._shared_pid != os.getpid():
                    self._shared = self._connect()
                    self._shared_pid = os.getpid()
        return self._shared

    def raw_collection(self, name: str) -> Any:
        """The pymongo-API collection ``name`` (with the options ``collection`` gives it; those
        are made once per process, as the shared client is)."""
        raw = self.raw()
        if self._collection is None:
            return raw[name]
        key = (os.getpid(), name)
        found = self._collections.get(key)
        if found is None:
            found = self._collections[key] = self._collection(raw, name)
        return found

    def lock(self) -> AbstractContextManager[None]:
        return self._lock.hold() if self._lock else nullcontext()

    @property
    def name(self) -> str:
        return self.raw().name

    def __getitem__(self, name: str) -> Collection:
        return Collection(self, name)

    def __getattr__(self, name: str) -> Collection:
        if name.startswith("_"):
            raise AttributeError(name)
        return Collection(self, name)

    def list_collection_names(self) -> list[str]:
        with self.lock():
            return list(self.raw().list_collection_names())

    def drop(self) -> None:
        """Drop the whole database (tests only)."""
        with self.lock():
            raw = self.raw()
            raw.client.drop_database(raw.name)

    def server_info(self) -> dict[str, Any]:
        """Version and kind of engine, for ``mmw db status`` and the benchmark."""
        if self.kind == "embedded":
            return {"engine": "embedded (litemongo/SQLite)"}
        with self.lock():
            info = self.raw().client.server_info()
        return {"engine": "mongodb", "version": info.get("version")}
