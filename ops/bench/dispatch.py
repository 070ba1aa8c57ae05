"""Dispatch benchmark: N due no-op jobs from insert to ``completed`` through the real path.

Run ``python ops/bench/dispatch.py --help``; what each number means is in ``ops/bench/README.md``.

The measured path is the production one: documents inserted into ``scheduled_jobs``
(``insert_many``), a :class:`worker.scheduler.Scheduler` polling in a thread, a Dramatiq worker on
the Redis broker (``worker.broker.build_broker``) running the lifecycle :class:`Runner` for job
type ``noop``. In the same run, on the same broker and worker, a raw Dramatiq baseline sends N
messages to a no-op actor (``actor.send`` in a loop, then one pipeline per batch) so the ratio
ours/raw says what MongoDB scheduling costs on top of Dramatiq itself.

Every MongoDB call is counted and timed by ``worker.db.engine.operations``; the benchmark's own
calls (its inserts, reading the results) are kept apart from the worker's.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker

import worker.actors  # noqa: F401 - registers the noop handler
from worker.actors.lifecycle import Runner, declare_job_actors, set_runner
from worker.broker import Dispatch, build_broker, declare_queues, dispatch_many
from worker.db import names
from worker.db.client import open_embedded, open_mongodb
from worker.db.engine import Database, operations
from worker.db.indexes import ensure_indexes
from worker.jobtypes import JOB_TYPES
from worker.scheduler import Scheduler, TickReport
from worker.settings import Settings

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/15"
DEFAULT_N_MONGODB = 20_000
DEFAULT_N_EMBEDDED = 2_000  # the embedded engine evaluates queries in Python
INSERT_CHUNK = 1_000
RAW_QUEUE = "bench_raw"
RAW_ACTOR = "bench_raw_noop"

Out = Callable[[str], None]


@dataclasses.dataclass
class Config:
    n: int | None = None
    threads: int = 8
    processes: int = 0  # 0: the Dramatiq worker runs in this process
    batch: int = 200
    poll: float = 0.01
    timeout: float = 600.0
    raw: bool = True
    redis_url: str = DEFAULT_REDIS_URL
    mongodb_url: str | None = None
    as_json: bool = False
    progress: bool = True


class Completions:
    """Thread-safe count of finished runs and the time of the last one (no database reads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.completed = 0
        self.failed = 0
        self.last = 0.0

    def add(self, ok: bool = True) -> None:
        with self._lock:
            if ok:
                self.completed += 1
            else:
                self.failed += 1
            self.last = time.perf_counter()

    @property
    def done(self) -> int:
        return self.completed + self.failed


class DbCompletions:
    """Finished runs counted in MongoDB (worker processes cannot call back into this one)."""

    interval = 0.25

    def __init__(self, db: Database) -> None:
        self._db = db
        self.polls = 0

    @property
    def done(self) -> int:
        self.polls += 1
        return self._db[names.SCHEDULED_JOBS].count_documents(
            {"status": {"$in": ["completed", "failed"]}}
        )


class WorkerProcesses:
    """``dramatiq worker.app --processes K``: the production worker entry, on this run's settings.

    Its processes count their MongoDB operations into a private Prometheus multiprocess folder
    (``mmw_mongo_operations_total``), read back after they stopped.
    """

    def __init__(self, settings: Settings, processes: int, threads: int, folder: Path) -> None:
        self.prom_dir = folder / "prometheus"
        self.prom_dir.mkdir(parents=True, exist_ok=True)
        with socket.socket() as probe:  # a free port for the workers' /metrics
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        env = {
            **os.environ,
            "MMW_MONGODB_DB": settings.mongodb_db,
            "MMW_EMBEDDED_PATH": str(settings.embedded_path),
            "BROKER_URL": str(settings.broker_url),
            "MMW_BROKER_NAMESPACE": settings.broker_namespace,
            "MMW_WORKER_METRICS_PORT": str(port),
            "MMW_LOG_LEVEL": "WARNING",
            "dramatiq_prom_db": str(self.prom_dir),
            "PROMETHEUS_MULTIPROC_DIR": str(self.prom_dir),
        }
        env.pop("MONGODB_URL", None)
        if settings.mongodb_url:
            env["MONGODB_URL"] = settings.mongodb_url
        command = [sys.executable, "-m", "dramatiq", "worker.app"]
        command += ["--processes", str(processes), "--threads", str(threads)]
        self.proc = subprocess.Popen(command, env=env)

    def stop(self) -> None:
        """SIGTERM: Dramatiq stops gracefully and the runners flush their audit entries."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def operations(self) -> dict[tuple[str, str], int]:
        from prometheus_client import CollectorRegistry
        from prometheus_client.multiprocess import MultiProcessCollector

        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(self.prom_dir))
        counts: Counter[tuple[str, str]] = Counter()
        for metric in registry.collect():
            for sample in metric.samples:
                if sample.name == "mmw_mongo_operations_total":
                    key = (sample.labels["collection"], sample.labels["operation"])
                    counts[key] += int(sample.value)
        return dict(counts)


class SchedulerLoop(threading.Thread):
    """Polls back to back while batches are full, else waits ``poll`` seconds; times each tick."""

    def __init__(self, scheduler: Scheduler, poll: float, batch: int) -> None:
        super().__init__(name="bench-scheduler", daemon=True)
        self.scheduler = scheduler
        self.poll = poll
        self.batch = batch
        self.stop = threading.Event()
        self.ticks = 0
        self.busy_ticks = 0
        self.busy_seconds = 0.0
        self.tick_seconds = 0.0
        self.claimed = 0
        self.dispatched = 0
        self.errors: list[str] = []

    def run(self) -> None:
        while not self.stop.is_set():
            began = time.perf_counter()
            try:
                report = self.scheduler.tick()
            except Exception as exc:  # the benchmark reports it instead of dying silently
                self.errors.append(f"{type(exc).__name__}: {exc}")
                report = TickReport()
            spent = time.perf_counter() - began
            self.ticks += 1
            self.tick_seconds += spent
            if report.claimed:
                self.busy_ticks += 1
                self.busy_seconds += spent
                self.claimed += report.claimed
                self.dispatched += report.dispatched
            self.errors.extend(report.errors)
            if report.claimed < self.batch:
                self.stop.wait(self.poll)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile of ``values`` (q in 0..100)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def delete_namespace(client: redis.Redis, namespace: str) -> int:
    """Delete this run's keys only (SCAN MATCH namespace:*); never a flush, the server is shared."""
    keys = list(client.scan_iter(match=f"{namespace}:*", count=1000))
    for start in range(0, len(keys), 500):
        client.delete(*keys[start : start + 500])
    return len(keys)


def wait_until(
    counter: Completions | DbCompletions,
    n: int,
    timeout: float,
    label: str,
    out: Out,
    progress: bool,
) -> None:
    """Wait for ``n`` finished runs, printing progress every second; TimeoutError if stalled."""
    deadline = time.monotonic() + timeout
    next_report = time.monotonic() + 1.0
    interval = getattr(counter, "interval", 0.01)
    while (done := counter.done) < n:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{label}: only {done}/{n} finished in {timeout:.0f}s")
        time.sleep(interval)
        if progress and time.monotonic() >= next_report:
            next_report += 1.0
            out(f"  {label}: {done}/{n}")


def job_docs(start: int, count: int, tag: str, now: dt.datetime) -> list[dict[str, Any]]:
    """Due one-off noop jobs, as an upstream app inserts them."""
    return [
        {
            "job_id": f"bench_{tag}_{i}",
            "user_id": "bench_user",
            "job_type": "noop",
            "payload": {},
            "schedule": {"execute_at": now, "recurring": False},
            "status": "pending",
            "attempts": 0,
            "max_attempts": 3,
            "created_at": now,
        }
        for i in range(start, start + count)
    ]


def ops_diff(
    before: dict[tuple[str, str], int], after: dict[tuple[str, str], int]
) -> dict[tuple[str, str], int]:
    keys = set(before) | set(after)
    diff = {k: after.get(k, 0) - before.get(k, 0) for k in keys}
    return {k: v for k, v in diff.items() if v}


def seconds_diff(
    before: dict[tuple[str, str, str], float], after: dict[tuple[str, str, str], float]
) -> dict[tuple[str, str, str], float]:
    return {k: v - before.get(k, 0.0) for k, v in after.items() if v - before.get(k, 0.0) > 0}


# --------------------------------------------------------------------------- the phases
def run_ours(
    db: Database,
    broker: RedisBroker,
    settings: Settings,
    cfg: Config,
    n: int,
    out: Out,
    *,
    runner: Runner | None = None,
    pool: WorkerProcesses | None = None,
) -> dict[str, Any]:
    """N due noop jobs: insert → scheduler → Redis → worker (``runner`` or ``pool``) → done."""
    counter: Completions | DbCompletions
    if runner is not None:
        counter = in_process = Completions()
        runner.finish_listeners.append(
            lambda job, status, result, error: in_process.add(status == "completed")
        )
    else:
        counter = DbCompletions(db)
    scheduler = Scheduler(db, broker, settings, owner="bench-scheduler")
    loop = SchedulerLoop(scheduler, cfg.poll, settings.claim_batch_size)
    tag = uuid.uuid4().hex[:8]

    ops_before = operations.snapshot()
    secs_before = operations.seconds()
    loop.start()
    first_insert = time.perf_counter()
    first_insert_at = dt.datetime.now(dt.UTC)
    inserts = 0
    for start in range(0, n, INSERT_CHUNK):
        docs = job_docs(start, min(INSERT_CHUNK, n - start), tag, dt.datetime.now(dt.UTC))
        db[names.SCHEDULED_JOBS].insert_many(docs, ordered=False)
        inserts += 1
    inserted = time.perf_counter()
    try:
        wait_until(counter, n, cfg.timeout, "ours", out, cfg.progress)
    finally:
        loop.stop.set()
        loop.join(timeout=10)
    if runner is not None:
        runner.audit_log.flush()
    if pool is not None:
        pool.stop()
    scheduler.flush_audit()  # the audit outboxes still waiting are part of the per-job cost
    ops = ops_diff(ops_before, operations.snapshot())
    secs = seconds_diff(secs_before, operations.seconds())
    if isinstance(counter, DbCompletions):  # the progress polls are the benchmark's, not ours
        polls = (names.SCHEDULED_JOBS, "count_documents")
        ops[polls] -= counter.polls
        if not ops[polls]:
            del ops[polls]
    if pool is not None:
        for key, count in pool.operations().items():
            ops[key] = ops.get(key, 0) + count

    # The benchmark's own calls are not the worker's: take its inserts out of the counts.
    bench_key = (names.SCHEDULED_JOBS, "insert_many")
    bench_secs = secs.pop((*bench_key, "engine"), 0.0) + secs.pop((*bench_key, "wait"), 0.0)
    ops[bench_key] = ops.get(bench_key, 0) - inserts
    if not ops[bench_key]:
        del ops[bench_key]

    rows = db[names.SCHEDULED_JOBS].find(
        {"job_id": {"$regex": f"^bench_{tag}_"}},
        {"schedule.execute_at": 1, "started_at": 1, "finished_at": 1, "status": 1, "attempts": 1},
    )
    if isinstance(counter, Completions):
        wall = counter.last - first_insert
    else:  # the last finish written by a worker process
        finished = [r["finished_at"] for r in rows if r.get("finished_at") is not None]
        wall = (max(finished) - first_insert_at).total_seconds() if finished else float("nan")
    lags = [
        (r["started_at"] - r["schedule"]["execute_at"]).total_seconds()
        for r in rows
        if r.get("started_at") is not None
    ]
    statuses: dict[str, int] = {}
    for r in rows:
        statuses[r["status"]] = statuses.get(r["status"], 0) + 1
    attempts_over_one = sum(1 for r in rows if (r.get("attempts") or 0) > 1)

    engine_s = sum(v for (_, _, kind), v in secs.items() if kind == "engine")
    wait_s = sum(v for (_, _, kind), v in secs.items() if kind == "wait")
    by_op = [
        {
            "collection": coll,
            "operation": op,
            "calls": count,
            "per_job": count / n,
            "engine_s": secs.get((coll, op, "engine"), 0.0),
        }
        for (coll, op), count in sorted(ops.items(), key=lambda kv: -kv[1])
    ]
    return {
        "n": n,
        "completed": statuses.get("completed", 0),
        "failed": statuses.get("failed", 0),
        "statuses": statuses,
        "attempts_over_one": attempts_over_one,
        "wall_s": wall,
        "insert_s": inserted - first_insert,
        "end_to_end_jobs_s": n / wall if wall > 0 else float("nan"),
        "dispatch_jobs_s": loop.dispatched / loop.busy_seconds if loop.busy_seconds else 0.0,
        "scheduler": {
            "ticks": loop.ticks,
            "busy_ticks": loop.busy_ticks,
            "busy_s": loop.busy_seconds,
            "tick_s": loop.tick_seconds,
            "claimed": loop.claimed,
            "dispatched": loop.dispatched,
            "errors": loop.errors[:10],
        },
        "lag_s": {
            "p50": percentile(lags, 50),
            "p99": percentile(lags, 99),
            "max": max(lags) if lags else float("nan"),
        },
        "mongo": {
            "ops_total": sum(ops.values()),
            "ops_per_job": sum(ops.values()) / n,
            "by_op": by_op,
            "engine_s": engine_s,
            "engine_s_scope": "worker processes not timed" if pool else "all",
            "lock_wait_s": wait_s,
            "engine_share_of_wall": engine_s / wall if wall > 0 else float("nan"),
            "bench_insert_calls": inserts,
            "bench_insert_s": bench_secs,
        },
    }


def run_raw(
    broker: RedisBroker,
    actor: Any,
    counter: Completions,
    cfg: Config,
    n: int,
    *,
    pipeline: bool,
    out: Out,
) -> dict[str, Any]:
    """N messages to a no-op actor on the same broker and worker: Dramatiq without MongoDB."""
    counter.completed = counter.failed = 0
    tag = uuid.uuid4().hex[:8]
    began = time.perf_counter()
    if pipeline:
        for start in range(0, n, cfg.batch):
            dispatch_many(
                broker,
                [
                    Dispatch(RAW_ACTOR, RAW_QUEUE, f"raw_{i}", f"raw_{tag}_{i}", 0)
                    for i in range(start, min(n, start + cfg.batch))
                ],
            )
    else:
        for i in range(n):
            actor.send(f"raw_{i}", f"raw_{tag}_{i}", 0)
    sent = time.perf_counter()
    label = "raw pipeline" if pipeline else "raw send"
    wait_until(counter, n, cfg.timeout, label, out, cfg.progress)
    wall = counter.last - began
    return {
        "n": n,
        "completed": counter.completed,
        "wall_s": wall,
        "send_s": sent - began,
        "end_to_end_jobs_s": n / wall if wall > 0 else float("nan"),
    }


# --------------------------------------------------------------------------- orchestration
def run(cfg: Config, out: Out = print) -> dict[str, Any]:
    """Set up a private database and Redis namespace, run the phases, clean up, return results."""
    mongodb_url = cfg.mongodb_url
    engine = "mongodb" if mongodb_url else "embedded"
    n = cfg.n or (DEFAULT_N_MONGODB if mongodb_url else DEFAULT_N_EMBEDDED)
    folder = Path(tempfile.mkdtemp(prefix="mmw-bench-"))
    namespace = f"mmw-bench-{uuid.uuid4().hex[:10]}"
    db_name = f"mmw_bench_{uuid.uuid4().hex[:10]}"
    settings = Settings(
        mongodb_url=mongodb_url,
        mongodb_db=db_name,
        embedded_path=folder / "mongo",
        broker_url=cfg.redis_url,
        broker_namespace=namespace,
        claim_batch_size=cfg.batch,
        poll_interval=cfg.poll,
    )
    db = (
        open_mongodb(mongodb_url, db_name)
        if mongodb_url
        else open_embedded(str(settings.embedded_path), db_name)
    )
    broker = build_broker(settings)
    assert isinstance(broker, RedisBroker), "the benchmark needs a Redis broker URL"
    raw_counter = Completions()

    def raw_noop(job_id: str, run_key: str, epoch: int) -> None:
        raw_counter.add()

    raw_actor = dramatiq.actor(raw_noop, actor_name=RAW_ACTOR, queue_name=RAW_QUEUE, broker=broker)
    runner: Runner | None = None
    pool: WorkerProcesses | None = None
    consumer: dramatiq.Worker | None = None
    timing_was = operations.timing
    results: dict[str, Any] = {
        "engine": engine,
        "engine_info": "",
        "redis": cfg.redis_url,
        "threads": cfg.threads,
        "processes": cfg.processes,
        "batch": cfg.batch,
        "poll_s": cfg.poll,
        "n": n,
        "namespace": namespace,
    }
    try:
        results["engine_info"] = str(db.server_info())
        out(f"engine: {db.server_info()}; redis {cfg.redis_url} namespace {namespace}")
        if engine == "embedded" and cfg.n is None:
            out(f"note: embedded engine, default N={n} (it evaluates queries in Python; --n)")
        ensure_indexes(db)
        declare_queues(broker, [t.queue for t in JOB_TYPES.values()] + [RAW_QUEUE])
        if cfg.processes:
            pool = WorkerProcesses(settings, cfg.processes, cfg.threads, folder)
        else:
            runner = Runner(db, settings)
            set_runner(runner)
            declare_job_actors(broker)
            consumer = dramatiq.Worker(broker, worker_threads=cfg.threads, worker_timeout=100)
            consumer.start()
        operations.timing = True
        where = f"{cfg.processes} worker processes x " if cfg.processes else ""
        out(f"ours: {n} noop jobs, {where}{cfg.threads} worker threads, claim batch {cfg.batch}")
        results["ours"] = run_ours(db, broker, settings, cfg, n, out, runner=runner, pool=pool)
        if cfg.raw and cfg.processes:
            out("raw baseline skipped: it runs in this process only (leave out --processes)")
        elif cfg.raw:
            out("raw Dramatiq: actor.send in a loop")
            results["raw_send"] = run_raw(
                broker, raw_actor, raw_counter, cfg, n, pipeline=False, out=out
            )
            out("raw Dramatiq: one pipeline per batch")
            results["raw_pipeline"] = run_raw(
                broker, raw_actor, raw_counter, cfg, n, pipeline=True, out=out
            )
            ours = results["ours"]["end_to_end_jobs_s"]
            for key in ("raw_send", "raw_pipeline"):
                results[key]["ours_over_raw"] = ours / results[key]["end_to_end_jobs_s"]
    finally:
        operations.timing = timing_was
        if pool is not None:
            pool.stop()
        if consumer is not None:
            consumer.stop()
        if runner is not None:
            runner.close()
        set_runner(None)
        broker.close()
        results["redis_keys_deleted"] = delete_namespace(
            redis.Redis.from_url(cfg.redis_url), namespace
        )
        if mongodb_url:
            db.drop()
        shutil.rmtree(folder, ignore_errors=True)
    return results


# --------------------------------------------------------------------------- output
def render(results: dict[str, Any]) -> str:
    """The results as readable tables."""
    ours = results["ours"]
    mongo = ours["mongo"]
    sched = ours["scheduler"]
    lines = [
        "",
        f"engine {results['engine']} ({results['engine_info']}), N={results['n']}, "
        f"{results['processes'] or 'in-process'} x {results['threads']} worker threads, "
        f"claim batch {results['batch']}, "
        f"poll {results['poll_s']}s",
        "",
        f"{'metric':<44}{'value':>14}",
        "-" * 58,
        f"{'completed / failed':<44}{ours['completed']:>8} / {ours['failed']:<3}",
        f"{'end-to-end jobs/s (first insert->last done)':<44}{ours['end_to_end_jobs_s']:>14.1f}",
        f"{'dispatch jobs/s (per busy scheduler second)':<44}{ours['dispatch_jobs_s']:>14.1f}",
        f"{'wall s / insert s':<44}{ours['wall_s']:>8.2f} / {ours['insert_s']:<5.2f}",
        f"{'schedule lag p50 s (started - execute_at)':<44}{ours['lag_s']['p50']:>14.3f}",
        f"{'schedule lag p99 s':<44}{ours['lag_s']['p99']:>14.3f}",
        f"{'scheduler ticks (busy) / busy s':<44}"
        f"{sched['ticks']:>6} ({sched['busy_ticks']}) / {sched['busy_s']:.2f}",
        f"{'MongoDB ops per job (worker, incl. audit)':<44}{mongo['ops_per_job']:>14.3f}",
        f"{'time in MongoDB engine s / share of wall':<44}"
        f"{mongo['engine_s']:>7.2f} / {mongo['engine_share_of_wall']:.0%}",
        f"{'engine lock wait s (embedded only)':<44}{mongo['lock_wait_s']:>14.2f}",
    ]
    if mongo["engine_s_scope"] != "all":
        lines.append(f"(engine time: {mongo['engine_s_scope']})")
    if sched["errors"]:
        lines.append(f"scheduler errors: {sched['errors']}")
    lines += [
        "",
        f"{'collection.operation':<36}{'calls':>8}{'per job':>10}{'engine s':>10}",
        "-" * 64,
    ]
    for row in mongo["by_op"]:
        name = f"{row['collection']}.{row['operation']}"
        lines.append(f"{name:<36}{row['calls']:>8}{row['per_job']:>10.3f}{row['engine_s']:>10.2f}")
    lines.append(
        f"(not counted: the benchmark's {mongo['bench_insert_calls']} insert_many calls, "
        f"{mongo['bench_insert_s']:.2f}s)"
    )
    if "raw_send" in results:
        lines += [
            "",
            f"{'raw Dramatiq, same broker/worker':<36}{'jobs/s':>10}{'wall s':>9}{'ours/raw':>10}",
            "-" * 65,
            f"{'ours (MongoDB scheduled)':<36}{ours['end_to_end_jobs_s']:>10.1f}"
            f"{ours['wall_s']:>9.2f}{'':>10}",
        ]
        for key, label in (("raw_send", "raw actor.send loop"), ("raw_pipeline", "raw pipeline")):
            raw = results[key]
            lines.append(
                f"{label:<36}{raw['end_to_end_jobs_s']:>10.1f}{raw['wall_s']:>9.2f}"
                f"{raw['ours_over_raw']:>10.2f}"
            )
    lines.append(f"\nRedis keys deleted: {results['redis_keys_deleted']}")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> Config:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--n",
        type=int,
        default=None,
        help=f"jobs (default {DEFAULT_N_MONGODB:,}; {DEFAULT_N_EMBEDDED:,} on the embedded engine)",
    )
    parser.add_argument("--threads", type=int, default=8, help="Dramatiq worker threads")
    parser.add_argument(
        "--processes",
        type=int,
        default=0,
        help="run `dramatiq worker.app` with this many processes instead of in-process threads",
    )
    parser.add_argument("--batch", type=int, default=200, help="scheduler claim batch size")
    parser.add_argument(
        "--poll", type=float, default=0.01, help="scheduler wait after a batch that was not full"
    )
    parser.add_argument("--timeout", type=float, default=600.0, help="give up after this long")
    parser.add_argument("--no-raw", action="store_true", help="skip the raw Dramatiq baseline")
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("MMW_BENCH_REDIS_URL", DEFAULT_REDIS_URL),
        help="Redis (a private key namespace is used and deleted)",
    )
    parser.add_argument("--json", action="store_true", help="also print the results as JSON")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    args = parser.parse_args(argv)
    return Config(
        n=args.n,
        threads=args.threads,
        processes=args.processes,
        batch=args.batch,
        poll=args.poll,
        timeout=args.timeout,
        raw=not args.no_raw,
        redis_url=args.redis_url,
        mongodb_url=os.environ.get("MONGODB_URL") or None,
        as_json=args.json,
        progress=not args.quiet,
    )


def main(argv: list[str] | None = None, out: Out = print) -> dict[str, Any]:
    """Parse arguments, run, print the tables (and JSON); returns the results."""
    cfg = parse_args(argv)
    results = run(cfg, out)
    out(render(results))
    if cfg.as_json:
        out(json.dumps(results, indent=2, default=str))
    return results


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _interrupt)  # clean up (Redis keys, temp folder) on kill too
    try:
        main()
    except KeyboardInterrupt:
        print("interrupted; cleaned up", file=sys.stderr)
        sys.exit(130)
