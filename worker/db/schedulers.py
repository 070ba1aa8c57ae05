"""Scheduler liveness (collection ``schedulers``): who may still send the runs it claimed.

A claim and its send are two steps; a scheduler killed between them leaves runs ``processing``
with no message. Each scheduler therefore beats here (one upsert every
``scheduler_heartbeat_seconds``, not per job) under the name it writes into ``lease.owner``; a
scheduler silent for ``scheduler_dead_after_seconds`` is dead, and the others check its unstarted
claims at once instead of waiting for the queued lease. Document: ``{_id: owner, host, pid,
started_at, heartbeat_at}``; ``_id`` is the unique key, so concurrent beats never duplicate it.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
from collections.abc import Iterable

from worker.db import names
from worker.db.engine import Database

__all__ = ["SchedulerRegistry"]


class SchedulerRegistry:
    """Heartbeats of scheduler instances, and which of them are dead."""

    def __init__(self, db: Database) -> None:
        self.schedulers = db[names.SCHEDULERS]

    def beat(self, owner: str, now: dt.datetime) -> None:
        self.schedulers.update_one(
            {"_id": owner},
            {
                "$set": {"heartbeat_at": now, "host": socket.gethostname(), "pid": os.getpid()},
                "$setOnInsert": {"started_at": now},
            },
            upsert=True,
        )

    def dead(self, now: dt.datetime, silent_for: dt.timedelta) -> list[str]:
        """Owners whose last beat is older than ``silent_for``."""
        rows = self.schedulers.find({"heartbeat_at": {"$lt": now - silent_for}}, {"_id": 1})
        return [str(r["_id"]) for r in rows]

    def forget(self, owners: Iterable[str], *, silent_since: dt.datetime | None = None) -> int:
        """Remove entries (a stopped scheduler; a dead one whose claims are all handled).

        With ``silent_since``, only entries still silent since then: one that came back is kept.
        """
        query: dict = {"_id": {"$in": list(owners)}}
        if silent_since is not None:
            query["heartbeat_at"] = {"$lt": silent_since}
        return self.schedulers.delete_many(query).deleted_count
