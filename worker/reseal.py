"""``mmw keys rotate`` / ``migrate``: every stored secret re-sealed under the primary key, in place.

Documents of each secret-holding collection (:data:`worker.secrets.SECRET_FIELDS`) are visited
in ``_id`` order, a batch at a time. For each one the fields not yet under the primary key are
computed (:func:`plan`, pure), then written with one compare-and-set on the old stored values: a
document changed meanwhile (a worker refreshed its token) is read again and planned again, so a
concurrent write is never overwritten. Each updated document gets an ``audit_log`` entry
(``secrets_resealed``: fields, old key ids, new key id), written right after its update.

Resumable by construction: a value already under the primary key needs nothing, so a run killed
half-way is simply started again and only the rest is written. A value that does not open
(unknown key id, tampered, moved) is never touched; it is reported and the command exits 1.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from worker.audit import AuditLog
from worker.clock import wall_clock
from worker.db.engine import Database
from worker.secrets import SECRET_FIELDS, Keyring, SecretError, context_for, secret_values

__all__ = ["ResealReport", "census", "plan", "reseal_all", "reseal_collection"]

#: Compare-and-set attempts on one document before it is reported as too busy.
_CAS_ATTEMPTS = 5


@dataclass
class ResealReport:
    """What one collection's pass did (``problems`` name documents and fields, never values)."""

    collection: str
    scanned: int = 0
    resealed: int = 0
    fields: int = 0
    problems: list[str] = field(default_factory=list)


def plan(
    ring: Keyring, collection: str, doc: Mapping[str, Any], *, plaintext_only: bool
) -> tuple[dict[str, str], dict[str, str | None], list[str]]:
    """The writes that bring ``doc`` under the primary key: (new values, old key ids, problems).

    ``plaintext_only`` (the migration) seals plaintext and leaves other keys' values alone.
    """
    updates: dict[str, str] = {}
    old_kids: dict[str, str | None] = {}
    problems: list[str] = []
    for path, stored in secret_values(collection, doc):
        kid = ring.kid_of(stored)
        if kid == ring.primary or (plaintext_only and kid is not None):
            continue
        try:
            updates[path] = ring.reseal(stored, context_for(collection, path, doc))
        except SecretError as exc:
            problems.append(f"{collection} _id={doc.get('_id')} {path}: {exc}")
            continue
        old_kids[path] = kid
    return updates, old_kids, problems


def reseal_collection(
    db: Database,
    ring: Keyring,
    collection: str,
    *,
    plaintext_only: bool = False,
    batch_size: int = 200,
    clock: Callable[[], dt.datetime] = wall_clock,
    progress: Callable[[ResealReport], None] | None = None,
) -> ResealReport:
    """Re-seal one collection; ``progress`` is called after every batch."""
    col = db[collection]
    audit = AuditLog(db)
    report = ResealReport(collection)
    last: Any = None
    while True:
        query = {} if last is None else {"_id": {"$gt": last}}
        batch = col.find(query, sort=[("_id", 1)], limit=batch_size)
        if not batch:
            break
        for doc in batch:
            report.scanned += 1
            _reseal_document(col, ring, collection, doc, plaintext_only, audit, clock, report)
        last = batch[-1]["_id"]
        if progress is not None:
            progress(report)
    audit.flush()
    if audit.pending():
        report.problems.append(f"{collection}: {audit.pending()} audit entries not written")
    return report


def _reseal_document(
    col: Any,
    ring: Keyring,
    collection: str,
    doc: dict[str, Any],
    plaintext_only: bool,
    audit: AuditLog,
    clock: Callable[[], dt.datetime],
    report: ResealReport,
) -> None:
    for _ in range(_CAS_ATTEMPTS):
        updates, old_kids, problems = plan(ring, collection, doc, plaintext_only=plaintext_only)
        if not updates:
            report.problems += problems
            return
        expected = {path: _stored(doc, path) for path in updates}
        if col.update_one({"_id": doc["_id"], **expected}, {"$set": updates}).modified_count:
            report.problems += problems
            report.resealed += 1
            report.fields += len(updates)
            audit.record(
                user_id=doc.get("user_id"),
                action="secrets_resealed",
                resource_type=collection,
                resource_id=str(doc["_id"]),
                details={
                    "fields": sorted(updates),
                    "from": sorted({kid or "plaintext" for kid in old_kids.values()}),
                    "to": ring.primary,
                },
                timestamp=clock(),
            )
            audit.flush()
            return
        fresh = col.find_one({"_id": doc["_id"]})
        if fresh is None:
            return  # deleted meanwhile: nothing to protect
        doc = fresh
    report.problems.append(f"{collection} _id={doc['_id']}: changed on every attempt, run again")


def _stored(doc: Mapping[str, Any], path: str) -> Any:
    node: Any = doc
    for part in path.split("."):
        node = node[part]
    return node


def reseal_all(
    db: Database,
    ring: Keyring,
    *,
    plaintext_only: bool = False,
    batch_size: int = 200,
    clock: Callable[[], dt.datetime] = wall_clock,
    progress: Callable[[ResealReport], None] | None = None,
) -> list[ResealReport]:
    """Re-seal every secret-holding collection (rotation, or the migration of plaintext)."""
    return [
        reseal_collection(
            db,
            ring,
            collection,
            plaintext_only=plaintext_only,
            batch_size=batch_size,
            clock=clock,
            progress=progress,
        )
        for collection in SECRET_FIELDS
    ]


def census(db: Database) -> dict[tuple[str, str], Counter[str]]:
    """Stored secrets by (collection, field) and key id (``plaintext`` for legacy values).

    A key may be removed from the settings once no field counts it any more.
    """
    counts: dict[tuple[str, str], Counter[str]] = {}
    for collection, spec in SECRET_FIELDS.items():
        wildcards = [f[:-2] for f in spec.fields if f.endswith(".*")]
        projection = {f.removesuffix(".*"): 1 for f in spec.fields}
        for doc in db[collection].find({}, projection=projection):
            for path, stored in secret_values(collection, doc):
                label = next((f"{w}.*" for w in wildcards if path.startswith(w + ".")), path)
                kid = Keyring.kid_of(stored) or "plaintext"
                counts.setdefault((collection, label), Counter())[kid] += 1
    return counts
