"""Decisions over a campaign plan's task graph (pure).

A plan is a list of task dicts as stored in ``campaigns.plan.tasks`` (``task_id``,
``agent_assigned``, ``dependencies``, ``status``, …). The run_campaign and agent_task actors ask
these functions what is valid, what may start now and what can never run; they never walk the
graph themselves.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

__all__ = [
    "COMPLETED",
    "FAILED",
    "IN_PROGRESS",
    "PENDING",
    "TASK_ID",
    "PlanError",
    "blocked_tasks",
    "find_cycle",
    "plan_outcome",
    "ready_tasks",
    "validate_plan",
]

#: The schema's task statuses. A task waiting for an approval stays in_progress; a task that can
#: never run because a dependency failed is failed too (its error says it was skipped).
PENDING = "pending"
IN_PROGRESS = "in_progress"
COMPLETED = "completed"
FAILED = "failed"

Task = Mapping[str, Any]

#: A task id is part of a record id (``<campaign_id>:<task_id>``), a job id and a field name
#: (``results.task_results.<task_id>``): a dot would nest there, a ``$`` would be an operator.
TASK_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


class PlanError(ValueError):
    """The plan cannot be executed; ``problems`` lists every reason, in plan order."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("invalid plan: " + "; ".join(self.problems))


def find_cycle(dependencies: Mapping[str, Sequence[str]]) -> list[str] | None:
    """One dependency cycle as a closed path (``[a, b, a]``), or None when the graph is a DAG.

    Edges to unknown ids are ignored (``validate_plan`` reports those separately).
    """
    white, grey, black = 0, 1, 2
    colour = dict.fromkeys(dependencies, white)
    for root in dependencies:
        if colour[root] != white:
            continue
        path: list[str] = [root]
        stack: list[Iterable[str]] = [iter(dependencies[root])]
        colour[root] = grey
        while stack:
            nxt = next((d for d in stack[-1] if d in colour), None)
            if nxt is None:
                colour[path.pop()] = black
                stack.pop()
            elif colour[nxt] == grey:
                return [*path[path.index(nxt) :], nxt]
            elif colour[nxt] == white:
                colour[nxt] = grey
                path.append(nxt)
                stack.append(iter(dependencies[nxt]))
    return None


def validate_plan(tasks: Sequence[Task], known_agents: Iterable[str]) -> None:
    """Raise :class:`PlanError` unless ids are unique and match :data:`TASK_ID`, agents are
    known, dependencies exist and the dependency graph has no cycle."""
    agents = set(known_agents)
    problems: list[str] = []
    if not tasks:
        problems.append("the plan has no tasks")
    seen: set[str] = set()
    for task in tasks:
        task_id = str(task.get("task_id") or "")
        if not task_id:
            problems.append("a task has no task_id")
        elif not TASK_ID.fullmatch(task_id):
            problems.append(
                f"task id {task_id!r} is not 1-64 letters, digits, '_' or '-' (no dots)"
            )
        elif task_id in seen:
            problems.append(f"task id {task_id!r} is used more than once")
        seen.add(task_id)
        agent = task.get("agent_assigned")
        if agent not in agents:
            problems.append(
                f"task {task_id!r} is assigned to unknown agent {agent!r} "
                f"(known: {', '.join(sorted(agents))})"
            )
    for task in tasks:
        for dep in task.get("dependencies") or []:
            if dep not in seen:
                problems.append(f"task {task.get('task_id')!r} depends on unknown task {dep!r}")
            elif dep == task.get("task_id"):
                problems.append(f"task {dep!r} depends on itself")
    graph = {str(t.get("task_id")): list(t.get("dependencies") or []) for t in tasks}
    cycle = find_cycle({k: [d for d in v if d != k] for k, v in graph.items()})
    if cycle:
        problems.append("dependency cycle: " + " -> ".join(cycle))
    if problems:
        raise PlanError(problems)


def ready_tasks(tasks: Sequence[Task], statuses: Mapping[str, str] | None = None) -> list[str]:
    """Ids of pending tasks whose dependencies are all completed, in plan order.

    ``statuses`` overrides the tasks' own ``status`` (e.g. the authoritative agent_tasks view).
    """
    status = _statuses(tasks, statuses)
    return [
        t["task_id"]
        for t in tasks
        if status[t["task_id"]] == PENDING
        and all(status.get(d) == COMPLETED for d in t.get("dependencies") or [])
    ]


def blocked_tasks(tasks: Sequence[Task], statuses: Mapping[str, str] | None = None) -> list[str]:
    """Ids of not-yet-started tasks that can never run: a direct or indirect dependency failed,
    in plan order."""
    status = _statuses(tasks, statuses)
    dead = {tid for tid, s in status.items() if s == FAILED}
    changed = True
    while changed:
        changed = False
        for t in tasks:
            tid = t["task_id"]
            if tid not in dead and any(d in dead for d in t.get("dependencies") or []):
                dead.add(tid)
                changed = True
    return [t["task_id"] for t in tasks if t["task_id"] in dead and status[t["task_id"]] == PENDING]


def plan_outcome(tasks: Sequence[Task], statuses: Mapping[str, str] | None = None) -> str | None:
    """``completed`` when every task completed, ``failed`` as soon as one task failed (its
    dependents can never run, so the campaign cannot complete), else None (still executing)."""
    values = set(_statuses(tasks, statuses).values())
    if FAILED in values:
        return FAILED
    if values <= {COMPLETED}:
        return COMPLETED
    return None


def _statuses(tasks: Sequence[Task], overrides: Mapping[str, str] | None) -> dict[str, str]:
    status = {t["task_id"]: str(t.get("status") or PENDING) for t in tasks}
    if overrides:
        status.update({k: v for k, v in overrides.items() if k in status})
    return status
