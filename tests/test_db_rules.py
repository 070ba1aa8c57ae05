"""MongoDB's update rules (pure) and the embedded engine refusing what a server refuses.

Expected outcomes are MongoDB's documented behaviours (update operators; error codes 28
PathNotViable, 40 ConflictingUpdateOperators, 14 TypeMismatch, 2 BadValue; unique and sparse
indexes index a missing field as null). The engine tests run on a real server too when
``MONGODB_TEST_URL`` is set, which checks the rules against the server itself.
"""

from __future__ import annotations

import datetime as dt

import pytest
from bson import Decimal128, Int64
from pymongo.errors import DuplicateKeyError, WriteError

from worker.db import rules

DOC = {
    "_id": 1,
    "none": None,
    "text": "abc",
    "number": 3,
    "when": dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    "obj": {"inner": {"x": 1}, "nul": None},
    "arr": [1, None, {"x": 1}],
    "big": Int64(2**40),
    "decimal": Decimal128("1.5"),
}


@pytest.mark.parametrize(
    "update",
    [
        {"$set": {"a": 1, "a.b": 2}},
        {"$set": {"a.b": 2, "a": 1}},
        {"$set": {"a": 1}, "$unset": {"a": ""}},
        {"$set": {"a.b.c": 1}, "$inc": {"a.b": 1}},
        {"$set": {"a": 1}, "$setOnInsert": {"a": 2}},
        {"$setOnInsert": {"a.b": 1}, "$set": {"a": {}}},
        {"$rename": {"a": "b"}, "$set": {"b.c": 1}},
        {"$push": {"list": 1}, "$pull": {"list": 2}},
        {"$set": {"plan.tasks.$.status": "x"}, "$unset": {"plan.tasks": ""}},
    ],
)
def test_conflicting_paths_are_code_40(update):
    violation = rules.check_update(update)
    assert violation is not None and violation.code == rules.CONFLICTING_UPDATE_OPERATORS


@pytest.mark.parametrize(
    "update",
    [
        {"$set": {"a.b": 1, "a.c": 2}},
        {"$set": {"ab": 1, "a": 2}},  # a prefix of the name, not of the path
        {"$set": {"a.b": 1}, "$unset": {"a.bc": ""}},
        {"$set": {"plan.tasks.$.status": "x", "updated_at": 1}},
        {"$set": {"x": 1}, "$setOnInsert": {"created_at": 1}},
        {"$set": {}},
    ],
)
def test_disjoint_paths_are_accepted(update):
    assert rules.check_update(update) is None


def test_unknown_operator_is_refused():
    violation = rules.check_update({"$sett": {"a": 1}})
    assert violation is not None and violation.code == rules.BAD_VALUE


@pytest.mark.parametrize(
    "update",
    [
        {"$set": {"none.b": 1}},  # null parent
        {"$set": {"text.b": 1}},  # string parent
        {"$set": {"number.b": 1}},
        {"$set": {"when.b": 1}},
        {"$set": {"obj.nul.b": 1}},  # null deeper down
        {"$set": {"obj.inner.x.y": 1}},  # number deeper down
        {"$inc": {"none.count": 1}},
        {"$push": {"text.items": 1}},
        {"$set": {"arr.name": 1}},  # non-numeric field under an array
        {"$set": {"arr.1.x": 1}},  # null array element
        {"$currentDate": {"none.at": True}},
        {"$rename": {"number": "text.n"}},  # the target must be viable
    ],
)
def test_paths_under_null_or_non_objects_are_code_28(update):
    assert rules.check_update(update) is None
    violation = rules.check_document(update, DOC)
    assert violation is not None and violation.code == rules.PATH_NOT_VIABLE


@pytest.mark.parametrize(
    "update",
    [
        {"$set": {"none": {"b": 1}}},  # replacing the null itself is fine
        {"$set": {"missing.b.c": 1}},  # missing parents are created
        {"$set": {"obj.inner.y": 1, "obj.new.z": 1}},
        {"$set": {"arr.2.y": 1, "arr.7": 1}},  # an object element; past the end pads
        {"$unset": {"none.b": "", "text.b": ""}},  # unset under a non-object is a no-op
        {"$pull": {"none.b": 1}},
        {"$pop": {"text.b": 1}},
        {"$set": {"arr.$.x": 1}},  # positional: depends on the query's match
        {"$inc": {"number": 1, "missing": 1}},
        {"$inc": {"big": 1, "decimal": 1}},
        {"$push": {"arr": 1, "missing": 1}},
    ],
)
def test_viable_updates_are_accepted(update):
    assert rules.check_update(update) is None
    assert rules.check_document(update, DOC) is None


@pytest.mark.parametrize(
    ("update", "code"),
    [
        ({"$inc": {"text": 1}}, rules.TYPE_MISMATCH),
        ({"$inc": {"none": 1}}, rules.TYPE_MISMATCH),
        ({"$mul": {"obj": 2}}, rules.TYPE_MISMATCH),
        ({"$push": {"number": 1}}, rules.BAD_VALUE),
        ({"$addToSet": {"none": 1}}, rules.BAD_VALUE),
    ],
)
def test_operator_type_rules(update, code):
    violation = rules.check_document(update, DOC)
    assert violation is not None and violation.code == code


def test_set_on_insert_is_checked_only_when_inserting():
    update = {"$setOnInsert": {"none.b": 1}}
    assert rules.check_document(update, DOC) is None
    assert rules.check_document(update, DOC, inserting=True).code == rules.PATH_NOT_VIABLE


def test_upsert_seed_is_the_query_equalities():
    query = {
        "a": 1,
        "b.c": "x",
        "d": {"$eq": 2},
        "e": {"$in": [1, 2]},
        "$and": [{"f": None}, {"g": {"$gt": 1}}],
        "$or": [{"h": 1}],
    }
    assert rules.upsert_seed(query) == {"a": 1, "b": {"c": "x"}, "d": 2, "f": None}
    violation = rules.check_document({"$set": {"a.z": 1}}, rules.upsert_seed(query), inserting=True)
    assert violation.code == rules.PATH_NOT_VIABLE


def test_only_nested_or_typed_updates_need_the_document():
    assert not rules.needs_document({"$set": {"a": 1, "b": None}, "$unset": {"c.d": ""}})
    assert rules.needs_document({"$set": {"a.b": 1}})
    assert rules.needs_document({"$inc": {"n": 1}})
    assert not rules.needs_document({"$setOnInsert": {"x": 1}})


# --- the database wrapper ------------------------------------------------------------------------


def _code(excinfo: pytest.ExceptionInfo[BaseException]) -> int | None:
    return getattr(excinfo.value, "code", None)


def test_engine_refuses_a_path_under_null(db):
    db.things.insert_one({"_id": 1, "results": None, "n": 0})
    for call in (
        lambda: db.things.update_one({"_id": 1}, {"$set": {"results.task_results.t1": {}}}),
        lambda: db.things.update_many({}, {"$set": {"results.x": 1}}),
        lambda: db.things.find_one_and_update({"_id": 1}, {"$set": {"results.x": 1}}),
    ):
        with pytest.raises(WriteError) as excinfo:
            call()
        assert _code(excinfo) == rules.PATH_NOT_VIABLE
    assert db.things.find_one({"_id": 1})["results"] is None


def test_engine_refuses_conflicting_paths(db):
    db.things.insert_one({"_id": 1})
    with pytest.raises(WriteError) as excinfo:
        db.things.update_one({"_id": 1}, {"$set": {"a": 1, "a.b": 2}})
    assert _code(excinfo) == rules.CONFLICTING_UPDATE_OPERATORS


def test_engine_checks_the_document_an_upsert_would_create(db):
    with pytest.raises(WriteError) as excinfo:
        db.things.update_one({"key": "k", "meta": None}, {"$set": {"meta.x": 1}}, upsert=True)
    assert _code(excinfo) == rules.PATH_NOT_VIABLE
    db.things.update_one({"key": "k"}, {"$set": {"meta.x": 1}}, upsert=True)
    assert db.things.find_one({"key": "k"})["meta"] == {"x": 1}


def test_unique_index_treats_missing_as_null(db):
    db.things.create_index([("key", 1)], unique=True)
    db.things.insert_one({"_id": 1})
    with pytest.raises(DuplicateKeyError):
        db.things.insert_one({"_id": 2})
    with pytest.raises(DuplicateKeyError):
        db.things.insert_one({"_id": 3, "key": None})


def test_sparse_unique_index_indexes_explicit_nulls(db):
    db.things.create_index([("key", 1)], unique=True, sparse=True)
    db.things.insert_many([{"_id": 1}, {"_id": 2}, {"_id": 3, "key": None}])
    with pytest.raises(DuplicateKeyError):
        db.things.insert_one({"_id": 4, "key": None})


def test_partial_unique_index_on_strings_lets_nulls_coexist(db):
    only_strings = {"key": {"$type": "string"}}
    db.things.create_index([("key", 1)], unique=True, partialFilterExpression=only_strings)
    db.things.insert_many([{"_id": 1}, {"_id": 2, "key": None}, {"_id": 3, "key": None}])
    db.things.insert_one({"_id": 4, "key": "a"})
    with pytest.raises(DuplicateKeyError):
        db.things.insert_one({"_id": 5, "key": "a"})
