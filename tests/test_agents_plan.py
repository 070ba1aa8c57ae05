"""Plan graph decisions: validation, ready tasks, blocked tasks, outcome."""

from __future__ import annotations

import pytest

from worker.agents.plan import (
    COMPLETED,
    FAILED,
    IN_PROGRESS,
    PENDING,
    PlanError,
    blocked_tasks,
    find_cycle,
    plan_outcome,
    ready_tasks,
    validate_plan,
)

AGENTS = ("strategist", "content_writer", "analyst")


def task(task_id: str, *deps: str, agent: str = "content_writer", status: str = PENDING) -> dict:
    return {
        "task_id": task_id,
        "agent_assigned": agent,
        "dependencies": list(deps),
        "status": status,
    }


def diamond() -> list[dict]:
    return [task("a"), task("b", "a"), task("c", "a"), task("d", "b", "c")]


def test_valid_plan_passes() -> None:
    validate_plan(diamond(), AGENTS)


@pytest.mark.parametrize(
    ("tasks", "expected"),
    [
        ([], "the plan has no tasks"),
        ([task("a"), task("a")], "task id 'a' is used more than once"),
        ([task("a", agent="poet")], "task 'a' is assigned to unknown agent 'poet'"),
        ([task("a", "zz")], "task 'a' depends on unknown task 'zz'"),
        ([task("a", "a")], "task 'a' depends on itself"),
        (
            [
                task(
                    "",
                )
            ],
            "a task has no task_id",
        ),
        (
            [task("a", "c"), task("b", "a"), task("c", "b")],
            "dependency cycle: a -> c -> b -> a",
        ),
    ],
)
def test_invalid_plans_say_why(tasks: list[dict], expected: str) -> None:
    with pytest.raises(PlanError) as info:
        validate_plan(tasks, AGENTS)
    assert any(p.startswith(expected) for p in info.value.problems), info.value.problems
    assert expected in str(info.value)


def test_every_problem_is_reported() -> None:
    with pytest.raises(PlanError) as info:
        validate_plan([task("a", "b"), task("b", "a", agent="ghost"), task("c", "x")], AGENTS)
    problems = info.value.problems
    assert len(problems) == 3
    assert "unknown agent 'ghost'" in problems[0]
    assert "unknown task 'x'" in problems[1]
    assert problems[2].startswith("dependency cycle: ")


def test_find_cycle_on_dag_and_cycles() -> None:
    assert find_cycle({"a": [], "b": ["a"], "c": ["a", "b"]}) is None
    assert find_cycle({"a": ["b"], "b": ["a"]}) == ["a", "b", "a"]
    cycle = find_cycle({"x": [], "a": ["x", "b"], "b": ["c"], "c": ["a"]})
    assert cycle == ["a", "b", "c", "a"]
    # Edges to unknown ids are not a cycle.
    assert find_cycle({"a": ["nope"]}) is None


def test_ready_tasks_follow_the_dag() -> None:
    tasks = diamond()
    assert ready_tasks(tasks) == ["a"]
    assert ready_tasks(tasks, {"a": COMPLETED}) == ["b", "c"]  # parallel branches
    assert ready_tasks(tasks, {"a": COMPLETED, "b": COMPLETED}) == ["c"]
    assert ready_tasks(tasks, {"a": COMPLETED, "b": COMPLETED, "c": IN_PROGRESS}) == []
    assert ready_tasks(tasks, {"a": COMPLETED, "b": COMPLETED, "c": COMPLETED}) == ["d"]


def test_statuses_default_to_the_tasks_own() -> None:
    tasks = [task("a", status=COMPLETED), task("b", "a")]
    assert ready_tasks(tasks) == ["b"]
    assert ready_tasks(tasks, {"unknown": COMPLETED}) == ["b"]


def test_blocked_tasks_are_transitive_dependents_of_a_failure() -> None:
    tasks = [*diamond(), task("e", "d"), task("f")]
    assert blocked_tasks(tasks, {"b": FAILED}) == ["d", "e"]
    assert blocked_tasks(tasks, {"a": FAILED}) == ["b", "c", "d", "e"]
    assert blocked_tasks(tasks, {"a": COMPLETED}) == []
    # Only tasks that have not started are reported.
    assert blocked_tasks(tasks, {"a": COMPLETED, "b": FAILED, "d": FAILED}) == ["e"]


def test_plan_outcome() -> None:
    tasks = diamond()
    assert plan_outcome(tasks) is None
    done = dict.fromkeys(("a", "b", "c", "d"), COMPLETED)
    assert plan_outcome(tasks, done) == COMPLETED
    assert plan_outcome(tasks, {"a": COMPLETED, "b": FAILED, "c": IN_PROGRESS}) == FAILED
    assert plan_outcome(tasks, {"a": COMPLETED, "b": COMPLETED}) is None


@pytest.mark.parametrize("task_id", ["1.1", "a b", "$x", "t:1", "é", "x" * 65])
def test_task_ids_are_plain_names(task_id: str) -> None:
    with pytest.raises(PlanError, match="is not 1-64 letters, digits"):
        validate_plan([task(task_id)], AGENTS)


@pytest.mark.parametrize("task_id", ["t1", "T_1-b", "1", "x" * 64])
def test_plain_task_ids_pass(task_id: str) -> None:
    validate_plan([task(task_id)], AGENTS)
