"""Every console query is served by an index `ensure_indexes` creates (no collection scan).

The pure check reads the index specs: some of the query's equality fields (at least one, when
it has any) must be a prefix of an index, followed by its sort keys (in order, or all
reversed) or, without a sort, by a range field. With ``MONGODB_TEST_URL`` each query is also
explained on the real server.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from tests.conftest import MONGODB_TEST_URL
from worker.console.queries import Query, console_queries
from worker.db.indexes import INDEXES, IndexSpec

NOW = dt.datetime(2026, 11, 25, 12, tzinfo=dt.UTC)
_RANGE = {"$gt", "$gte", "$lt", "$lte"}


def _fields(filt: dict[str, Any]) -> tuple[set[str], set[str], set[str]]:
    """(equality fields, range fields, fields inside $or branches) of a filter."""
    eq, ranged, alternatives = set(), set(), set()
    for key, cond in filt.items():
        if key == "$and":
            for part in cond:
                e, r, o = _fields(part)
                eq, ranged, alternatives = eq | e, ranged | r, alternatives | o
        elif key == "$or":
            for part in cond:
                e, r, o = _fields(part)
                alternatives |= e | r | o
        elif isinstance(cond, dict) and set(cond) & _RANGE:
            ranged.add(key)
        elif isinstance(cond, dict) and not set(cond) <= {"$eq", "$in"}:
            raise AssertionError(f"cannot judge the condition {cond!r} on {key}")
        else:
            eq.add(key)
    return eq, ranged, alternatives


def serving_index(query: Query, indexes: tuple[IndexSpec, ...] = INDEXES) -> IndexSpec | None:
    """An index that serves ``query`` without a collection scan or an in-memory sort."""
    eq, ranged, alternatives = _fields(query.filter)
    sort = list(query.sort)
    for spec in indexes:
        if spec.collection != query.collection:
            continue
        keys = list(spec.keys)
        prefix = 0
        while prefix < len(keys) and keys[prefix][0] in eq:
            prefix += 1
        rest = keys[prefix:]
        sort_keys = {name for name, _ in sort}
        if not alternatives <= eq | sort_keys or (eq and prefix == 0):
            continue  # an index that skips every equality would read far more than it finds
        if sort:
            ahead = rest[: len(sort)]
            reversed_sort = [(name, -direction) for name, direction in sort]
            if ahead in (sort, reversed_sort):
                return spec
        elif prefix > 0 or (rest and rest[0][0] in ranged):
            return spec
    return None


@pytest.mark.parametrize("query", console_queries(NOW), ids=lambda q: q.name)
def test_every_console_query_is_index_backed(query):
    spec = serving_index(query)
    assert spec is not None, f"no index serves {query.collection} {query.filter} {query.sort}"


def test_every_console_query_has_a_limit_or_is_a_count():
    for query in console_queries(NOW):
        assert query.limit or query.name in {"count", "recent_action"}, query.name


def test_the_check_refuses_unindexed_shapes():
    assert serving_index(Query("q", "scheduled_jobs", {"payload.post_id": "p1"})) is None
    by_created = Query("q", "scheduled_jobs", {"status": "failed"}, (("created_at", -1),))
    assert serving_index(by_created) is None
    assert serving_index(Query("q", "scheduled_jobs", {}, (("updated_at", -1),))) is None
    no_tie_break = Query("q", "approval_requests", {"user_id": "u1"}, (("created_at", -1),))
    assert serving_index(no_tie_break) is None


@pytest.mark.skipif(not MONGODB_TEST_URL, reason="explain needs a real MongoDB server")
def test_no_console_query_scans_the_collection(db):
    for query in console_queries(NOW):
        cursor = db.raw()[query.collection].find(query.filter, query.projection)
        if query.sort:
            cursor = cursor.sort(list(query.sort))
        if query.limit:
            cursor = cursor.limit(query.limit)
        plan = str(cursor.explain()["queryPlanner"]["winningPlan"])
        assert "COLLSCAN" not in plan, (query.name, query.filter, plan)
