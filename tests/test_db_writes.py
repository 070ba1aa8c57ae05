"""Writes a real MongoDB accepts: nested sets over null parents, upserts racing on a unique key."""

from __future__ import annotations

import threading

import pytest
from pymongo.errors import DuplicateKeyError

from worker.db.rules import creating_steps
from worker.db.writes import UPSERT_ATTEMPTS, set_nested, upsert_retrying


def test_creating_steps_guard_each_ancestor_once():
    assert creating_steps("a.b.c", 1) == [
        ({"a.b": {"$type": "object"}}, {"a.b.c": 1}),
        ({"a": {"$type": "object"}, "a.b": {"$not": {"$type": "object"}}}, {"a.b": {"c": 1}}),
        ({"a": {"$not": {"$type": "object"}}}, {"a": {"b": {"c": 1}}}),
    ]
    assert creating_steps("flat", 1) == [({}, {"flat": 1})]


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ({"integrations": {"other": True}}, {"other": True, "zoho_connected": False}),
        ({"integrations": None}, {"zoho_connected": False}),
        ({"integrations": "legacy"}, {"zoho_connected": False}),
        ({}, {"zoho_connected": False}),
    ],
)
def test_set_nested_over_any_parent(db, before, after):
    db.settings.insert_one({"user_id": "u1", **before})
    assert set_nested(
        db.settings, {"user_id": "u1"}, "integrations.zoho_connected", False, also={"n": 1}
    )
    doc = db.settings.find_one({"user_id": "u1"})
    assert doc["integrations"] == after and doc["n"] == 1


def test_set_nested_deeper_keeps_siblings(db):
    db.campaigns.insert_one({"campaign_id": "c", "results": {"summary": "s", "task_results": None}})
    set_nested(db.campaigns, {"campaign_id": "c"}, "results.task_results.t1", {"ok": 1})
    set_nested(db.campaigns, {"campaign_id": "c"}, "results.task_results.t2", {"ok": 2})
    results = db.campaigns.find_one({"campaign_id": "c"})["results"]
    assert results == {"summary": "s", "task_results": {"t1": {"ok": 1}, "t2": {"ok": 2}}}


def test_set_nested_upserts_a_missing_document_and_matches_nothing_without(db):
    assert not set_nested(db.settings, {"user_id": "nobody"}, "integrations.x", True)
    assert db.settings.count_documents({}) == 0
    assert set_nested(db.settings, {"user_id": "u2"}, "integrations.x", True, upsert=True)
    assert db.settings.find_one({"user_id": "u2"})["integrations"] == {"x": True}


def test_upsert_retrying_runs_the_loser_again():
    calls = []

    def upsert(key: str) -> str:
        calls.append(key)
        if len(calls) == 1:
            raise DuplicateKeyError("E11000 inserted meanwhile by another worker")
        return "updated"

    assert upsert_retrying(upsert, "k") == "updated" and calls == ["k", "k"]


def test_an_upsert_wider_than_its_key_raises_after_retrying(db):
    """A document of another user holds the key: the upsert must not take it over."""
    db.content_library.insert_one({"content_id": "c1", "user_id": "other"})
    calls = []

    def upsert():
        calls.append(1)
        return db.content_library.update_one(
            {"content_id": "c1", "user_id": "u1"}, {"$set": {"x": 1}}, upsert=True
        )

    with pytest.raises(DuplicateKeyError):
        upsert_retrying(upsert)
    assert len(calls) == UPSERT_ATTEMPTS
    assert db.content_library.find_one({"content_id": "c1"})["user_id"] == "other"


def test_racing_upserts_make_one_document(db):
    barrier = threading.Barrier(6)
    errors: list[Exception] = []

    def write(n: int) -> None:
        barrier.wait()
        try:
            upsert_retrying(
                db.job_controls.update_one,
                {"kind": "user", "value": "u1"},
                {"$set": {"paused": True, "by": n}},
                upsert=True,
            )
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and db.job_controls.count_documents({"kind": "user"}) == 1


# --- the indexes behind the upserts ---------------------------------------------------------------


def test_no_unique_index_is_sparse():
    """Sparse unique indexes still index explicit nulls (two collide): optional keys are partial."""
    from worker.db.indexes import INDEXES

    assert [s for s in INDEXES if s.options.get("unique") and s.options.get("sparse")] == []


@pytest.mark.parametrize(
    ("collection", "key"),
    [
        ("analytics_data", {"user_id": "u1", "campaign_id": None, "date": 1}),
        ("user_memory", {"memory_id": "m1"}),
        ("agent_memory", {"memory_id": "m1"}),
        ("global_memory", {"memory_id": "m1"}),
        ("job_controls", {"kind": "user", "value": "u1"}),
        ("settings", {"user_id": "u1"}),
        ("zoho_crm_records", {"user_id": "u1", "module": "Leads", "record_id": "r1"}),
        ("social_accounts", {"user_id": "u1", "platform": "x", "account_id": "a1"}),
        ("agent_tasks", {"task_id": "c:t1"}),
        ("approval_requests", {"request_id": "r1"}),
        ("content_library", {"content_id": "c1"}),
    ],
)
def test_every_upsert_key_is_unique(db, collection, key):
    db[collection].insert_one(dict(key))
    with pytest.raises(DuplicateKeyError):
        db[collection].insert_one(dict(key))


def test_documents_without_an_optional_key_coexist(db):
    db.user_memory.insert_many(
        [{"user_id": "u1"} for _ in range(2)] + [{"memory_id": None} for _ in range(2)]
    )
    db.scheduled_jobs.insert_many(
        [{"job_id": f"j{i}", "idempotency_key": None} for i in range(2)]
        + [{"job_id": f"k{i}"} for i in range(2)]
    )


def test_an_index_whose_options_changed_is_replaced(db):
    from worker.db.indexes import ensure_indexes

    name = "user_id_1_idempotency_key_1"
    db.scheduled_jobs.drop_index(name)
    db.scheduled_jobs.create_index(
        [("user_id", 1), ("idempotency_key", 1)], unique=True, sparse=True
    )
    ensure_indexes(db)
    info = db.scheduled_jobs.index_information()[name]
    assert info["partialFilterExpression"] == {"idempotency_key": {"$type": "string"}}
    assert not info.get("sparse")


# --- write concern and read preference --------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("mongodb://h:27017/", {"w": "majority", "readPreference": "primary"}),
        ("mongodb://h/?w=1", {"readPreference": "primary"}),
        ("mongodb://h/?readpreference=secondaryPreferred&W=2", {}),
    ],
)
def test_the_url_overrides_the_client_defaults(url, expected):
    from worker.db.client import client_options

    assert client_options(url) == expected


def test_a_secondary_read_preference_never_reaches_job_state():
    """Claims read their batch back: on a lagging secondary that finds nothing (stranded)."""
    from pymongo import ReadPreference

    from worker.db.client import open_mongodb

    db = open_mongodb("mongodb://127.0.0.1:1/?readPreference=secondaryPreferred", "x")
    assert db.raw_collection("scheduled_jobs").read_preference == ReadPreference.PRIMARY
    assert db.raw_collection("agent_tasks").read_preference == ReadPreference.PRIMARY
    memory = db.raw_collection("user_memory")
    assert memory.read_preference == ReadPreference.SECONDARY_PREFERRED
    assert memory.write_concern.document == {"w": "majority"}
    db.raw().client.close()
