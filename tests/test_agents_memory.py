"""Memory: nearest items for a query, strictly scoped to the user; vector search pipeline."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from worker.agents.approvals import decision
from worker.agents.embeddings import HashingEmbedder
from worker.agents.memory import MemoryStore, vector_search_pipeline
from worker.db.engine import Database
from worker.settings import Settings

NOW = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def store(db: Database) -> MemoryStore:
    return MemoryStore(db, HashingEmbedder(256), Settings(memory_top_k=3), now=lambda: NOW)


def fill(store: MemoryStore) -> None:
    for text in (
        "prefers short Instagram captions with emojis",
        "quarterly newsletter performs best on Tuesday mornings",
        "budget is tight, avoid paid ads",
    ):
        store.remember_user("alice", text, memory_type="preference", agent_name="strategist")
    for text in (
        "Instagram captions should be long and formal",
        "newsletter on Tuesday mornings",
        "shoes and hiking",
    ):
        store.remember_user("bob", text, memory_type="preference", agent_name="strategist")


def test_recall_returns_the_nearest_of_the_user_only(store: MemoryStore) -> None:
    fill(store)
    found = store.recall_user("alice", "Instagram captions", k=2)
    assert found[0].content == "prefers short Instagram captions with emojis"
    assert found[0].score > found[1].score
    everything = store.recall_user("alice", "Instagram captions newsletter shoes hiking", k=10)
    assert len(everything) == 3
    assert all("bob" not in m.content and "formal" not in m.content for m in everything)
    assert [m.content for m in store.recall_user("bob", "Tuesday newsletter", k=1)] == [
        "newsletter on Tuesday mornings"
    ]
    assert store.recall_user("carol", "Instagram captions") == []
    with pytest.raises(ValueError):
        store.recall_user("", "anything")


def test_rewriting_a_memory_does_not_duplicate_it(store: MemoryStore, db: Database) -> None:
    fill(store)
    fill(store)
    assert db.user_memory.count_documents({}) == 6
    doc = db.user_memory.find_one({"user_id": "alice"})
    assert doc["embedding_model"] == "hashing-v1-256" and len(doc["embedding"]) == 256
    assert doc["metadata"]["timestamp"] == NOW and doc["agent_name"] == "strategist"


def test_vectors_of_another_embedder_are_not_compared(store: MemoryStore, db: Database) -> None:
    fill(store)
    other = MemoryStore(db, HashingEmbedder(64), Settings(), now=lambda: NOW)
    assert other.recall_user("alice", "Instagram captions") == []


def test_agent_and_global_memory(store: MemoryStore) -> None:
    store.remember_agent(
        "analyst", "weekend posts get more reach", memory_type="pattern", metadata={}
    )
    store.remember_agent("strategist", "lead with outcomes", memory_type="learning", metadata={})
    store.remember_global(
        "short video trends up", memory_type="trend", metadata={"industry": "retail"}
    )
    assert [m.content for m in store.recall_agent("analyst", "weekend reach")] == [
        "weekend posts get more reach"
    ]
    assert [m.collection for m in store.recall_global("video trends")] == ["global_memory"]


def test_shared_memory_recalls_only_curated_documents(store: MemoryStore, db: Database) -> None:
    """A user's run wrote "Objective '<their text>'" into agent_memory before shared memory
    became curated; such documents (no ``curated`` mark) are never recalled."""
    store.remember_agent("strategist", "lead with outcomes", memory_type="learning", metadata={})
    legacy = db.agent_memory.find_one({})
    db.agent_memory.insert_one(
        {k: v for k, v in legacy.items() if k not in ("_id", "curated")}
        | {"memory_id": "legacy", "content": "Objective 'secret': lead with outcomes"}
    )
    recalled = [m.content for m in store.recall_agent("strategist", "lead with outcomes")]
    assert recalled == ["lead with outcomes"]


def test_vector_search_pipeline_is_scoped() -> None:
    pipeline = vector_search_pipeline(
        index="memory_vectors",
        vector=[0.1, 0.2],
        k=4,
        scope={"user_id": "alice", "embedding_model": "m"},
        candidates=100,
    )
    stage = pipeline[0]["$vectorSearch"]
    assert stage["filter"] == {"user_id": "alice", "embedding_model": "m"}
    assert (stage["limit"], stage["numCandidates"], stage["path"]) == (4, 100, "embedding")
    assert pipeline[1]["$project"]["score"] == {"$meta": "vectorSearchScore"}


@pytest.mark.parametrize(
    ("request_doc", "expected"),
    [
        ({"status": "pending", "expires_at": NOW + dt.timedelta(hours=1)}, "pending"),
        ({"status": "pending", "expires_at": NOW}, "expired"),
        ({"status": "approved", "expires_at": NOW - dt.timedelta(hours=1)}, "approved"),
        ({"status": "rejected"}, "rejected"),
        ({"status": "pending"}, "pending"),
    ],
)
def test_approval_decision(request_doc: dict[str, Any], expected: str) -> None:
    assert decision(request_doc, NOW) == expected


class _Rows:
    """A collection whose aggregate answers like Atlas $vectorSearch did."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.rows = rows
        self.pipelines: list[list[dict[str, Any]]] = []

    def aggregate(self, pipeline: list[dict[str, Any]]) -> list[dict[str, Any]]:
        self.pipelines.append(pipeline)
        return self.rows


class _AtlasLike:
    kind = "mongodb"

    def __init__(self, collection: _Rows) -> None:
        self.collection = collection

    def __getitem__(self, name: str) -> _Rows:
        return self.collection


def test_vector_search_results_are_rechecked_for_the_user() -> None:
    rows = _Rows(
        [
            {"content": "mine", "memory_type": "insight", "user_id": "alice", "score": 0.9},
            {"content": "leaked", "memory_type": "insight", "user_id": "bob", "score": 0.8},
        ]
    )
    settings = Settings(memory_vector_index="memory_vectors", memory_top_k=2)
    store = MemoryStore(_AtlasLike(rows), HashingEmbedder(32), settings)  # type: ignore[arg-type]
    found = store.recall_user("alice", "anything")
    assert [(m.content, m.score) for m in found] == [("mine", 0.9)]
    stage = rows.pipelines[0][0]["$vectorSearch"]
    assert stage["filter"] == {"user_id": "alice", "embedding_model": "hashing-v1-32"}


def test_without_vector_search_support_recall_falls_back(db: Database) -> None:
    settings = Settings(memory_vector_index="memory_vectors", memory_top_k=1)
    store = MemoryStore(db, HashingEmbedder(256), settings, now=lambda: NOW)
    fill(store)
    if db.kind != "mongodb":  # the embedded engine: pretend to be a server without the stage
        db.kind = "mongodb"
    found = store.recall_user("alice", "Instagram captions")
    assert [m.content for m in found] == ["prefers short Instagram captions with emojis"]


def test_resolve_decides_once_for_the_owner_and_submits_the_resume_job(db: Database) -> None:
    from worker.agents.approvals import ApprovalConflict, request_approval, resolve

    request_approval(
        db,
        request_id="c1:plan",
        user_id="alice",
        campaign_id="c1",
        conversation_id=None,
        request_type="campaign_plan",
        content={},
        requested_by="strategist",
        now=NOW,
        timeout=dt.timedelta(hours=1),
        resume={"job_type": "run_campaign", "payload": {"campaign_id": "c1"}},
    )
    with pytest.raises(ApprovalConflict):
        resolve(db, request_id="c1:plan", user_id="bob", approved=True, by="bob", now=NOW)
    done = resolve(
        db, request_id="c1:plan", user_id="alice", approved=False, by="alice", notes="no", now=NOW
    )
    assert (done["status"], done["rejection_reason"], done["approved_by"]) == (
        "rejected",
        "no",
        None,
    )
    job = db.scheduled_jobs.find_one({"job_id": "run_campaign:c1:plan:resolved"})
    assert job["payload"] == {"campaign_id": "c1"} and job["user_id"] == "alice"
    assert job["schedule"]["execute_at"] == NOW
    with pytest.raises(ApprovalConflict):
        resolve(db, request_id="c1:plan", user_id="alice", approved=True, by="alice", now=NOW)
