"""Agent memory: write insights with embeddings, retrieve the nearest by cosine similarity.

Three scopes, one collection each: ``user_memory`` (one user's; every read and write is filtered
by ``user_id``, so a user's agents never see another user's memories), ``agent_memory`` (what
one agent learned, shared across users) and ``global_memory`` (platform-wide patterns).

Shared memory holds no user content: an agent run for a user writes only ``user_memory``; the
shared collections are curated (written by operators or platform code with
:meth:`MemoryStore.remember_agent` / :meth:`MemoryStore.remember_global`, which mark each
document ``curated: true``), and recall reads only curated documents, so anything a user's run
wrote there before this rule (no ``curated`` mark) is never recalled.

Each document stores its ``embedding_model``; retrieval only compares vectors of the embedder
in use. With ``memory_vector_index`` set on a real MongoDB (Atlas), retrieval runs
``$vectorSearch``; otherwise, or when the server does not support it, the newest
``memory_candidates`` documents of the scope are scored in-process.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pymongo.errors import OperationFailure

from worker.agents.embeddings import Embedder
from worker.agents.vectors import top_k
from worker.clock import wall_clock
from worker.db import names
from worker.db.engine import Database
from worker.db.writes import upsert_retrying
from worker.settings import Settings

__all__ = ["Memory", "MemoryStore", "vector_search_pipeline"]

log = logging.getLogger(__name__)

#: The mark of shared memories written through the curated API (the only ones recalled).
_CURATED = {"curated": True}


@dataclass(frozen=True)
class Memory:
    content: str
    score: float
    memory_type: str
    collection: str


def vector_search_pipeline(
    *, index: str, vector: list[float], k: int, scope: dict[str, Any], candidates: int
) -> list[dict[str, Any]]:
    """The Atlas ``$vectorSearch`` pipeline for one scope (its fields must be filter fields of
    the index: ``user_id``/``agent_name`` and ``embedding_model``)."""
    return [
        {
            "$vectorSearch": {
                "index": index,
                "path": "embedding",
                "queryVector": vector,
                "numCandidates": max(candidates, k),
                "limit": k,
                "filter": scope,
            }
        },
        {
            "$project": {
                "_id": 0,
                "content": 1,
                "memory_type": 1,
                "user_id": 1,
                "score": {"$meta": "vectorSearchScore"},
            }
        },
    ]


class MemoryStore:
    """Reads and writes the three memory collections with one embedder."""

    def __init__(
        self,
        db: Database,
        embedder: Embedder,
        settings: Settings,
        *,
        now: Callable[[], dt.datetime] = wall_clock,
    ) -> None:
        self._db = db
        self._embedder = embedder
        self._settings = settings
        self._now = now

    # --- writing ------------------------------------------------------------------------------
    def remember_user(
        self,
        user_id: str,
        content: str,
        *,
        memory_type: str,
        agent_name: str,
        metadata: dict[str, Any] | None = None,
    ) -> str:
        return self._write(
            names.USER_MEMORY,
            {"user_id": user_id, "agent_name": agent_name},
            content,
            memory_type,
            {"timestamp": self._now(), "importance": 5, **(metadata or {})},
        )

    def remember_agent(
        self, agent_name: str, content: str, *, memory_type: str, metadata: dict[str, Any]
    ) -> str:
        """A curated learning shared by every user's ``agent_name``: never user content."""
        return self._write(
            names.AGENT_MEMORY, {"agent_name": agent_name, **_CURATED}, content, memory_type,
            metadata,
        )  # fmt: skip

    def remember_global(self, content: str, *, memory_type: str, metadata: dict[str, Any]) -> str:
        """A curated platform-wide pattern: never user content."""
        return self._write(names.GLOBAL_MEMORY, dict(_CURATED), content, memory_type, metadata)

    def _write(
        self,
        collection: str,
        scope: dict[str, Any],
        content: str,
        memory_type: str,
        metadata: dict[str, Any],
    ) -> str:
        """Upsert by a content-derived ``memory_id``: a re-run task does not duplicate memories."""
        key = "|".join([collection, *map(str, scope.values()), memory_type, content])
        memory_id = hashlib.blake2b(key.encode(), digest_size=12).hexdigest()
        now = self._now()
        upsert_retrying(
            self._db[collection].update_one,
            {"memory_id": memory_id, **scope},
            {
                "$setOnInsert": {
                    "memory_id": memory_id,
                    **scope,
                    "memory_type": memory_type,
                    "content": content,
                    "embedding": self._embedder.embed([content])[0],
                    "embedding_model": self._embedder.name,
                    "metadata": metadata,
                    "created_at": now,
                },
                "$set": {"updated_at": now},
            },
            upsert=True,
        )
        return memory_id

    # --- reading ------------------------------------------------------------------------------
    def recall_user(self, user_id: str, query: str, k: int | None = None) -> list[Memory]:
        """The user's memories nearest to ``query``; only ever this user's documents."""
        if not user_id:
            raise ValueError("user memory needs a user_id")
        found = self._recall(names.USER_MEMORY, {"user_id": user_id}, query, k)
        return [m for m, owner in found if owner == user_id]

    def recall_agent(self, agent_name: str, query: str, k: int | None = None) -> list[Memory]:
        """Curated learnings of ``agent_name`` nearest to ``query``."""
        scope = {"agent_name": agent_name, **_CURATED}
        return [m for m, _ in self._recall(names.AGENT_MEMORY, scope, query, k)]

    def recall_global(self, query: str, k: int | None = None) -> list[Memory]:
        """Curated platform-wide patterns nearest to ``query``."""
        return [m for m, _ in self._recall(names.GLOBAL_MEMORY, dict(_CURATED), query, k)]

    def _recall(
        self, collection: str, scope: dict[str, Any], query: str, k: int | None
    ) -> list[tuple[Memory, str | None]]:
        k = self._settings.memory_top_k if k is None else k
        if k <= 0 or not query.strip():
            return []
        vector = self._embedder.embed([query])[0]
        scope = {**scope, "embedding_model": self._embedder.name}
        index = self._settings.memory_vector_index
        if index and self._db.kind == "mongodb":
            pipeline = vector_search_pipeline(
                index=index,
                vector=vector,
                k=k,
                scope=scope,
                candidates=self._settings.memory_candidates,
            )
            try:
                rows = self._db[collection].aggregate(pipeline)
            except (OperationFailure, NotImplementedError) as exc:
                log.info("vector search unavailable (%s); scoring in-process", exc)
            else:
                return [
                    (
                        Memory(r["content"], float(r["score"]), r["memory_type"], collection),
                        r.get("user_id"),
                    )
                    for r in rows
                ]
        rows = self._db[collection].find(
            scope,
            {"_id": 0, "content": 1, "memory_type": 1, "embedding": 1, "user_id": 1},
            sort=[("created_at", -1)],
            limit=self._settings.memory_candidates,
        )
        best = top_k(vector, ((row, row["embedding"]) for row in rows), k)
        return [
            (Memory(r["content"], score, r["memory_type"], collection), r.get("user_id"))
            for r, score in best
        ]
