"""``mmw worker`` under supervisors: dead worker processes are replaced, stop signals drain.

The unit tests drive :class:`worker.supervisor.Supervisor` with fake children and a hand clock;
the process tests run the real ``mmw worker`` (wall time only) and kill or signal it as honcho,
foreman, systemd or Kubernetes would.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import signal
import subprocess

import pytest

from tests.helpers import job_doc
from tests.processes import children, free_port, kill, process_env, scrape, start, wait_until
from worker.supervisor import RestartPolicy, Spawned, Supervisor
from worker.worker_process import (
    EXIT_CANNOT_START,
    StopState,
    next_stop_state,
    shutdown_grace_seconds,
)

EXECUTIONS = "test_executions"

RUNNING, DRAINING, NOW = StopState.RUNNING, StopState.DRAINING, StopState.NOW


# ------------------------------------------------------------------------------ decisions
@pytest.mark.parametrize(
    ("state", "signum", "expected"),
    [
        (RUNNING, signal.SIGTERM, DRAINING),
        (RUNNING, signal.SIGINT, DRAINING),
        (RUNNING, signal.SIGHUP, DRAINING),
        (DRAINING, signal.SIGTERM, DRAINING),  # the group's copy and the supervisor's: no kill
        (DRAINING, signal.SIGHUP, DRAINING),
        (DRAINING, signal.SIGINT, NOW),  # a person's second Ctrl-C
        (NOW, signal.SIGTERM, NOW),
    ],
)
def test_only_a_repeated_sigint_escalates(state, signum, expected):
    assert next_stop_state(state, signum) is expected


def test_restart_delay_doubles_while_crashing_and_resets_after_a_stable_run():
    policy = RestartPolicy(base_seconds=1, max_seconds=60, stable_seconds=60)
    failures, delays = 0, []
    for _ in range(9):  # a crash loop: each process dies at once
        failures = policy.failures_after(failures, lived_seconds=0.5)
        delays.append(policy.delay(failures))
    assert delays == [1, 2, 4, 8, 16, 32, 60, 60, 60]
    assert policy.failures_after(failures, lived_seconds=3600) == 1  # one crash after a long run
    assert policy.delay(1) == 1


def test_stop_grace_is_the_longest_time_limit_plus_a_margin():
    assert shutdown_grace_seconds([60_000, 900_000, 180_000]) == 905
    assert shutdown_grace_seconds([]) == 5


# ------------------------------------------------------------------------------ the loop
class FakeChild:
    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.code: int | None = None
        self.signals: list[int] = []
        read_fd, self.ready_write = os.pipe()
        self.spawned = Spawned(self, read_fd)

    def poll(self) -> int | None:
        return self.code

    def send_signal(self, sig: int) -> None:
        self.signals.append(sig)

    def ready(self) -> None:
        os.write(self.ready_write, b"r")

    def exit(self, code: int) -> None:
        self.code = code
        os.close(self.ready_write)


class HandClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Recorder:
    def __init__(self) -> None:
        self.exited: list[int] = []
        self.restarts = 0
        self.ready: list[int] = []

    def process_exited(self, pid: int) -> None:
        self.exited.append(pid)

    def process_restarting(self) -> None:
        self.restarts += 1

    def processes_ready(self, count: int) -> None:
        self.ready.append(count)


@pytest.fixture
def supervised():
    clock, recorder, spawned = HandClock(), Recorder(), []

    def spawn(index: int) -> Spawned:
        child = FakeChild(100 + len(spawned))
        spawned.append(child)
        return child.spawned

    sup = Supervisor(spawn, 2, observer=recorder, clock=clock)  # type: ignore[arg-type]
    for slot in sup.slots:
        sup._start(slot)
    for child in spawned:
        child.ready()
    sup.step(timeout=0)
    yield sup, spawned, clock, recorder
    for child in spawned:
        if child.code is None:
            child.exit(0)


def test_a_dead_child_is_replaced_after_its_backoff_and_the_other_is_left_alone(supervised):
    sup, spawned, clock, recorder = supervised
    first, second = spawned
    assert recorder.ready == [1, 2]
    first.exit(-signal.SIGKILL)
    clock.now += 0.5
    assert sup.step(timeout=0)
    assert (recorder.exited, recorder.restarts, recorder.ready[-1]) == ([100], 1, 1)
    assert len(spawned) == 2  # backoff: not restarted yet
    clock.now += 1.0
    sup.step(timeout=0)
    assert len(spawned) == 3 and second.signals == [] and second.code is None
    spawned[2].ready()
    sup.step(timeout=0)
    assert recorder.ready[-1] == 2
    # It dies again at once: the next start waits twice as long.
    spawned[2].exit(1)
    sup.step(timeout=0)
    clock.now += 1.5
    sup.step(timeout=0)
    assert len(spawned) == 3
    clock.now += 0.5
    sup.step(timeout=0)
    assert len(spawned) == 4


def test_stop_signals_reach_each_child_once_and_nothing_restarts(supervised):
    sup, spawned, clock, _ = supervised
    first, second = spawned
    first.exit(-signal.SIGKILL)
    sup.step(timeout=0)  # a restart is pending
    for sig in (signal.SIGTERM, signal.SIGTERM, signal.SIGHUP, signal.SIGTERM):
        sup.request_stop(sig)
    assert second.signals == [signal.SIGTERM]
    clock.now += 120
    assert sup.step(timeout=0)
    assert len(spawned) == 2  # the pending restart was cancelled
    second.exit(0)
    assert not sup.step(timeout=0)
    assert sup.exit_code == 0


def test_a_stop_signal_that_arrived_with_the_childs_exit_is_applied_first(supervised):
    sup, spawned, _, recorder = supervised
    sup._signals.append(signal.SIGTERM)  # delivered, handler ran, loop not yet there
    spawned[0].exit(0)
    sup._reap()
    assert recorder.restarts == 0 and sup.slots[0].restart_at is None
    assert spawned[1].signals == [signal.SIGTERM]


def test_a_second_sigint_kills_the_children(supervised):
    sup, spawned, _, _ = supervised
    sup.request_stop(signal.SIGINT)
    sup.request_stop(signal.SIGINT)
    assert [c.signals for c in spawned] == [[signal.SIGTERM, signal.SIGKILL]] * 2
    for child in spawned:
        child.exit(-signal.SIGKILL)
    assert not sup.step(timeout=0)
    assert sup.exit_code == 128 + signal.SIGINT


def test_a_child_that_cannot_start_stops_a_new_instance():
    spawned: list[FakeChild] = []

    def spawn(index: int) -> Spawned:
        spawned.append(FakeChild(200 + index))
        return spawned[-1].spawned

    sup = Supervisor(spawn, 2, clock=HandClock())  # type: ignore[arg-type]
    for slot in sup.slots:
        sup._start(slot)
    spawned[0].exit(EXIT_CANNOT_START)  # e.g. an unknown queue or a broken plugin
    sup.step(timeout=0)
    assert spawned[1].signals == [signal.SIGTERM]
    spawned[1].exit(0)
    assert not sup.step(timeout=0)
    assert sup.exit_code == EXIT_CANNOT_START


# ------------------------------------------------------------------------------ command line
@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["-p", "3", "-Q", "social", "email", "-t", "2"], (3, 2, ["social", "email"])),
        (["--queues", "social", "--queues", "email"], (2, 8, ["social", "email"])),
        ([], (2, 8, [])),
    ],
)
def test_worker_command_options(monkeypatch, args, expected):
    from click.testing import CliRunner

    import worker.supervisor
    from worker.cli import main

    seen = {}
    monkeypatch.setattr(worker.supervisor, "run_worker_instance", lambda **kw: seen.update(kw))
    result = CliRunner().invoke(main, ["worker", *args])
    assert result.exit_code == 0, result.output
    assert (seen["processes"], seen["threads"], seen["queues"]) == expected


def test_worker_command_refuses_dramatiq_only_options():
    from click.testing import CliRunner

    from worker.cli import main

    result = CliRunner().invoke(main, ["worker", "--watch", "."])
    assert result.exit_code == 2 and "No such option '--watch'" in result.output
    assert CliRunner().invoke(main, ["worker", "-p", "0"]).exit_code == 2


# ------------------------------------------------------------------------------ real processes
def started(db, sleep_seconds: float, n: int = 1, prefix: str = "job") -> list[str]:
    now = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    docs = [
        job_doc("record", at=now, payload={"sleep_seconds": sleep_seconds}, job_id=f"{prefix}_{i}")
        for i in range(n)
    ]
    db.scheduled_jobs.insert_many(docs)
    return [d["job_id"] for d in docs]


def completed(db, job_ids: list[str]) -> bool:
    return db.scheduled_jobs.count_documents(
        {"job_id": {"$in": job_ids}, "status": "completed"}
    ) == len(job_ids)


def executors(db, job_ids: list[str]) -> set[int]:
    return {e["pid"] for e in db[EXECUTIONS].find({"job_id": {"$in": job_ids}, "event": "done"})}


def metric(page: str, name: str) -> float | None:
    found = re.search(rf"^{name} (\S+)$", page, re.MULTILINE)
    return float(found.group(1)) if found else None


def worker_instance(settings, tmp_path, *args: str) -> tuple[subprocess.Popen, int, object]:
    port = free_port()
    env = process_env(settings, MMW_WORKER_METRICS_PORT=str(port))
    log = tmp_path / "run.log"
    proc = start(["worker", *args], env, log)
    return proc, port, log


@pytest.mark.crash
def test_sigkilled_worker_process_is_replaced_while_the_other_keeps_working(
    db, settings, redis_broker, tmp_path
):
    worker, port, log = worker_instance(settings, tmp_path, "--processes", "2", "--threads", "1")
    scheduler = start(["scheduler"], process_env(settings), log)
    try:
        wait_until(lambda: metric(scrape(port), "mmw_worker_processes_ready") == 2, 60,
                   "2 worker processes ready", log)  # fmt: skip
        victim, survivor = sorted(children(worker.pid))
        os.kill(victim, signal.SIGKILL)
        during = started(db, 0.1, n=4, prefix="during")  # sent while the victim is replaced
        wait_until(lambda: completed(db, during), 60, "jobs done during the restart", log)
        assert survivor in executors(db, during)
        page = ""

        def replaced() -> bool:
            nonlocal page
            page = scrape(port)
            return metric(page, "mmw_worker_processes_ready") == 2

        wait_until(replaced, 60, "the killed process replaced", log)
        assert metric(page, "mmw_worker_process_restarts_total") == 1
        replacement = children(worker.pid) - {survivor}
        assert survivor in children(worker.pid) and len(replacement) == 1
        after = started(db, 0.5, n=6, prefix="after")  # more than one process's prefetch (2)
        wait_until(lambda: completed(db, after), 60, "jobs done after the restart", log)
        assert executors(db, after) == replacement | {survivor}
        assert worker.poll() is None  # the instance never stopped
    finally:
        kill(worker, signal.SIGTERM)
        kill(scheduler, signal.SIGTERM)
    assert worker.returncode == 0
    assert "worker process 0 (pid" in log.read_text() and "killed by SIGKILL" in log.read_text()


@pytest.mark.crash
def test_group_sigterm_lets_a_20_second_job_finish(db, settings, redis_broker, tmp_path):
    """honcho and foreman signal the process group, systemd every process of the cgroup: each
    child gets the SIGTERM directly and once more from the supervisor."""
    worker, _, log = worker_instance(settings, tmp_path, "--processes", "2", "--threads", "1")
    scheduler = start(["scheduler"], process_env(settings), log)
    try:
        [job_id] = started(db, 20)
        wait_until(lambda: db[EXECUTIONS].count_documents({"event": "start"}) == 1, 60,
                   "the 20 s job started", log)  # fmt: skip
        assert db[EXECUTIONS].count_documents({"event": "done"}) == 0  # still running
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=60)
    finally:
        kill(worker, signal.SIGKILL)
        kill(scheduler, signal.SIGTERM)
    assert worker.returncode == 0
    job = db.scheduled_jobs.find_one({"job_id": job_id})
    assert (job["status"], job["attempts"]) == ("completed", 1)
    assert db[EXECUTIONS].count_documents({"event": "done"}) == 1


@pytest.mark.crash
def test_sigterm_to_the_main_process_only_drains_its_children(db, settings, redis_broker, tmp_path):
    """Kubernetes and docker stop signal PID 1 only: the supervisor forwards it."""
    worker, _, log = worker_instance(settings, tmp_path, "--processes", "2", "--threads", "1")
    scheduler = start(["scheduler"], process_env(settings), log)
    try:
        [job_id] = started(db, 3)
        wait_until(lambda: db[EXECUTIONS].count_documents({"event": "start"}) == 1, 60,
                   "the job started", log)  # fmt: skip
        workers = children(worker.pid)
        assert db[EXECUTIONS].count_documents({"event": "done"}) == 0  # still running
        os.kill(worker.pid, signal.SIGTERM)
        worker.wait(timeout=60)
    finally:
        kill(worker, signal.SIGKILL)
        kill(scheduler, signal.SIGTERM)
    assert worker.returncode == 0
    assert len(workers) == 2 and not any(os.path.exists(f"/proc/{pid}") for pid in workers)
    job = db.scheduled_jobs.find_one({"job_id": job_id})
    assert (job["status"], job["attempts"]) == ("completed", 1)


@pytest.mark.crash
def test_unknown_queue_stops_the_instance_with_a_clear_error(settings, tmp_path):
    worker, _, log = worker_instance(settings, tmp_path, "-p", "1", "-Q", "default", "no_such")
    try:
        worker.wait(timeout=60)
    finally:
        kill(worker, signal.SIGKILL)
    assert worker.returncode == EXIT_CANNOT_START
    assert "unknown queue(s) ['no_such']" in log.read_text()


@pytest.mark.crash
def test_second_instance_on_a_port_fails_harmlessly_and_a_killed_one_leaves_no_orphan(
    settings, tmp_path
):
    worker, port, log = worker_instance(settings, tmp_path, "--processes", "1", "--threads", "1")
    second = None
    try:
        wait_until(lambda: metric(scrape(port), "mmw_worker_processes_ready") == 1, 60,
                   "the worker process ready", log)  # fmt: skip
        env = process_env(settings, MMW_WORKER_METRICS_PORT=str(port))
        second = start(["worker", "--processes", "1"], env, tmp_path / "second.log")
        second.wait(timeout=30)
        assert metric(scrape(port), "mmw_worker_processes_ready") == 1  # its files were kept
        [child] = children(worker.pid)
        os.kill(worker.pid, signal.SIGKILL)  # the main process only
        worker.wait(timeout=10)
        wait_until(lambda: not os.path.exists(f"/proc/{child}"), 30, "the orphan gone", log)
    finally:
        kill(worker, signal.SIGKILL)
        if second is not None:
            kill(second, signal.SIGKILL)
    assert second.returncode == 1
    assert "give each mmw worker instance" in (tmp_path / "second.log").read_text()
    assert "supervisor gone" in log.read_text()


@pytest.mark.crash
def test_plain_dramatiq_cli_still_runs_worker_app(db, settings, redis_broker, tmp_path):
    port = str(free_port())  # its exposition server reads these, not our settings
    env = process_env(settings, dramatiq_prom_host="127.0.0.1", dramatiq_prom_port=port)
    log = tmp_path / "run.log"
    scheduler = start(["scheduler"], env, log)
    worker = start(["worker.app", "-p", "1", "-t", "1"], env, log, module="dramatiq")
    try:
        job_ids = started(db, 0)
        wait_until(lambda: completed(db, job_ids), 60, "the job completed", log)
        worker.send_signal(signal.SIGTERM)  # its main process only: Dramatiq's CLI forwards it
        worker.wait(timeout=30)
    finally:
        kill(worker, signal.SIGKILL)
        kill(scheduler, signal.SIGTERM)
    assert worker.returncode == 0
