"""Audit that cannot be lost: the job outbox, its idempotent move, the bounded buffer."""

from __future__ import annotations

import datetime as dt

import pytest
from pymongo.errors import BulkWriteError

from tests.helpers import job_doc
from worker import metrics
from worker.audit import AuditLog, _move, move_outbox, outbox_entry
from worker.db.jobs import JobStore


def actions(db, job_id: str) -> list[str]:
    return [a["action"] for a in db.audit_log.find({"resource_id": job_id})]


def test_state_change_carries_its_entry_and_the_move_is_idempotent(db, clock):
    doc = job_doc(at=clock.now)
    db.scheduled_jobs.insert_one(doc)
    store = JobStore(db)
    (claimed,) = store.claim_due(
        clock.now,
        owner="s",
        limit=5,
        queued_lease=dt.timedelta(minutes=1),
        audit=outbox_entry("job_claimed", clock.now, owner="s"),
    )
    store.start(
        doc["job_id"],
        claimed["epoch"],
        worker="w",
        now=clock.now,
        lease=dt.timedelta(minutes=1),
        audit=outbox_entry("job_started", clock.now, token="secret-value-1234"),
    )
    # A process SIGKILLed now loses nothing: the entries are on the document itself.
    outbox = db.scheduled_jobs.find_one({"job_id": doc["job_id"]})["audit_outbox"]
    assert [e["action"] for e in outbox] == ["job_claimed", "job_started"]
    assert outbox[1]["details"]["token"] != "secret-value-1234"  # redacted before it is stored

    # A mover that crashed after its insert and before its pull: the next move writes nothing twice.
    db.scheduled_jobs.update_one(
        {"job_id": doc["job_id"]}, {"$set": {"copy": outbox}}
    )  # keep a copy to put back
    assert move_outbox(db) == 2
    db.scheduled_jobs.update_one(
        {"job_id": doc["job_id"]}, {"$set": {"audit_outbox": outbox}, "$unset": {"copy": ""}}
    )
    assert move_outbox(db) == 2  # counted as written (duplicate entry ids), then pulled
    assert actions(db, doc["job_id"]) == ["job_claimed", "job_started"]
    row = db.audit_log.find_one({"action": "job_claimed"})
    assert row["user_id"] == "user_1" and row["details"] == {"job_type": "noop", "owner": "s"}
    assert row["resource_type"] == "scheduled_job" and row["timestamp"] == clock.now
    assert db.scheduled_jobs.find_one({"job_id": doc["job_id"]})["audit_outbox"] == []
    assert move_outbox(db) == 0


def test_two_movers_at_once_write_each_entry_once(db, clock):
    docs = [job_doc(at=clock.now) for _ in range(5)]
    db.scheduled_jobs.insert_many(docs)
    JobStore(db).claim_due(
        clock.now,
        owner="s",
        limit=5,
        queued_lease=dt.timedelta(minutes=1),
        audit=outbox_entry("job_claimed", clock.now),
    )
    # Both read the same outboxes before either pulls (the interleaving of two schedulers).
    seen = db.scheduled_jobs.find({}, {"audit_outbox": 1, "job_id": 1, "user_id": 1})
    assert _move(db, [dict(d) for d in seen]) == 5
    assert _move(db, [dict(d) for d in seen]) == 5  # its inserts are duplicates: nothing new
    assert db.audit_log.count_documents({"action": "job_claimed"}) == 5
    # One entry was pushed onto the whole batch: each job still has its own row.
    assert {a["resource_id"] for a in db.audit_log.find({})} == {d["job_id"] for d in docs}


class FlakyAudit:
    """An audit_log collection that refuses some rows once (a partial BulkWriteError)."""

    def __init__(self, real, refuse: set[str]) -> None:
        self.real = real
        self.refuse = refuse

    def insert_many(self, rows, ordered=True):
        errors, written = [], 0
        for i, row in enumerate(rows):
            if row["action"] in self.refuse:
                errors.append({"index": i, "code": 2, "errmsg": "refused"})
            else:
                self.real.insert_many([row])
                written += 1
        self.refuse = set()
        if errors:
            raise BulkWriteError({"writeErrors": errors, "nInserted": written})


class DbWith:
    def __init__(self, db, audit) -> None:
        self.db, self.audit = db, audit

    def __getitem__(self, name):
        return self.audit if name == "audit_log" else self.db[name]


def test_partial_bulk_failure_keeps_only_what_was_not_written(db, clock):
    flaky = FlakyAudit(db.audit_log, {"bad"})
    log = AuditLog(DbWith(db, flaky))  # type: ignore[arg-type]
    for action in ("a", "bad", "b"):
        log.record(
            user_id="u", action=action, resource_type="x", resource_id="1", timestamp=clock.now
        )
    assert log.flush() == 2
    assert log.pending() == 1  # only the refused row is kept
    assert log.flush() == 1  # and it goes through next time: no flush fails forever
    assert log.pending() == 0
    assert sorted(a["action"] for a in db.audit_log.find({})) == ["a", "b", "bad"]


def test_a_flush_retried_after_it_was_written_writes_nothing_twice(db, clock):
    log = AuditLog(db)
    log.record(user_id="u", action="a", resource_type="x", resource_id="1", timestamp=clock.now)
    with log._lock:
        row = dict(log._buffer[0])
    assert log.flush() == 1
    log._buffer.append(row)  # the same row again (a write whose answer was lost)
    assert log.flush() == 1 and log.pending() == 0
    assert db.audit_log.count_documents({}) == 1


def test_buffer_is_bounded_and_counts_what_it_drops(db, clock):
    class Down:
        def insert_many(self, rows, ordered=True):
            raise ConnectionError("audit_log unreachable")

    log = AuditLog(DbWith(db, Down()), max_buffer=10_000, max_pending=50)  # type: ignore[arg-type]
    before = metrics.AUDIT_DROPPED._value.get()
    for i in range(80):
        log.record(user_id="u", action=f"a{i}", resource_type="x", resource_id="1")
    log.flush()
    assert log.pending() == 50
    assert metrics.AUDIT_DROPPED._value.get() - before == 30
    assert [r["action"] for r in log._buffer][:1] == ["a30"]  # the oldest went first


@pytest.mark.parametrize("limit", [1, 3])
def test_move_outbox_works_in_batches(db, clock, limit):
    docs = [job_doc(at=clock.now) for _ in range(4)]
    db.scheduled_jobs.insert_many(docs)
    JobStore(db).claim_due(
        clock.now,
        owner="s",
        limit=4,
        queued_lease=dt.timedelta(minutes=1),
        audit=outbox_entry("job_claimed", clock.now),
    )
    moved = 0
    while (n := move_outbox(db, limit)) > 0:
        assert n <= limit
        moved += n
    assert moved == 4 == db.audit_log.count_documents({})


def test_runs_in_flight_are_moved_once_they_end_or_settle(db, clock):
    docs = [job_doc(at=clock.now) for _ in range(2)]
    db.scheduled_jobs.insert_many(docs)
    store = JobStore(db)
    claimed = store.claim_due(
        clock.now,
        owner="s",
        limit=5,
        queued_lease=dt.timedelta(minutes=10),
        audit=outbox_entry("job_claimed", clock.now),
    )
    store.fail_claimed(claimed[0], "bad", clock.now, audit=outbox_entry("job_failed", clock.now))
    settle = dt.timedelta(seconds=30)
    assert move_outbox(db, settled_before=clock.now - settle) == 2  # the ended one only
    assert actions(db, docs[1]["job_id"]) == []  # in flight: it will push more soon
    clock.advance(seconds=31)
    assert move_outbox(db, settled_before=clock.now - settle) == 1  # settled: moved anyway
    assert actions(db, docs[1]["job_id"]) == ["job_claimed"]


def test_operator_actions_carry_their_audit_in_the_same_update(db, clock, monkeypatch):
    """cancel/retry push their entry with the state change; it shows in audit_log at once,
    and survives a failed (or killed) publication as an outbox entry the scheduler moves."""
    from tests.helpers import job_doc
    from worker import api

    job = job_doc(at=clock.now)
    db.scheduled_jobs.insert_one(job)
    api.cancel(db, job["job_id"], now=clock.now, actor="cli:alice", reason="duplicate")
    (entry,) = db.audit_log.find({"resource_id": job["job_id"], "action": "job_cancelled"})
    assert entry["details"]["actor"] == "cli:alice" and entry["details"]["reason"] == "duplicate"
    assert not db.scheduled_jobs.find_one({"job_id": job["job_id"]}).get("audit_outbox")

    failed = job_doc(at=clock.now, status="failed")
    db.scheduled_jobs.insert_one(failed)

    def broken(*args, **kwargs):
        raise RuntimeError("killed here")

    monkeypatch.setattr(api, "move_job_outbox", broken)
    api.retry(db, failed["job_id"], now=clock.now, actor="cli:bob", reason="fixed the token")
    (pending,) = db.scheduled_jobs.find_one({"job_id": failed["job_id"]})["audit_outbox"]
    assert pending["action"] == "job_requeued" and pending["details"]["actor"] == "cli:bob"
