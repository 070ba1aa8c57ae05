"""``mmw``: the command line of the worker platform (also ``python -m worker``)."""

from __future__ import annotations

import datetime as dt
import json
import signal
import sys
import threading
from typing import Any

import click

from worker import api
from worker.cli_errors import describe, missing_embedded_folder, safe_url
from worker.db.client import get_database
from worker.db.engine import Database
from worker.logs import configure_logging
from worker.settings import Settings, get_settings


def _settings() -> Settings:
    """The environment's settings, with their plugins loaded (job types they register)."""
    from worker.plugins import load_plugins

    try:
        settings = get_settings()
    except Exception as exc:  # pydantic's message names the bad variable
        raise click.ClickException(f"invalid configuration: {exc}") from exc
    try:
        load_plugins(settings)
    except ImportError as exc:
        raise click.ClickException(f"cannot import plugin from MMW_PLUGINS: {exc}") from exc
    return settings


def _db(settings: Settings, *, create: bool = False) -> Database:
    """The configured database; on the embedded engine only ``create`` may start a new folder
    (``mmw dev``, ``mmw db init``): elsewhere a missing folder means the wrong directory."""
    if not create:
        problem = missing_embedded_folder(settings)
        if problem:
            raise click.ClickException(problem)
    return get_database(settings)


def _where(settings: Settings, database: Database) -> str:
    """Which database a command uses, for people: the embedded folder or the server."""
    if settings.mongodb_url:
        return f"MongoDB {safe_url(settings.mongodb_url)} (database {database.name})"
    return f"the embedded engine at {settings.embedded_path.absolute()}"


def _fail(exc: Exception) -> click.ClickException:
    return click.ClickException(str(exc))


def _stop_event() -> threading.Event:
    """An event set by SIGTERM or SIGINT: graceful stop for long-running commands."""
    stop = threading.Event()

    def handler(signum: int, _frame: Any) -> None:
        click.echo(f"received {signal.Signals(signum).name}, stopping…", err=True)
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    return stop


class _Commands(click.Group):
    """``mmw``'s root: failures an operator can fix print one line, not a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except Exception as exc:
            if isinstance(exc, click.ClickException | click.exceptions.Exit | click.Abort):
                raise
            try:
                settings: Settings | None = get_settings()
            except Exception:
                settings = None
            message = describe(exc, settings)
            if message is None:
                raise
            raise click.ClickException(message) from None


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="marketing-minds-worker")
def main() -> None:
    """Marketing Minds worker: MongoDB-scheduled jobs, run once on Dramatiq workers."""


# ------------------------------------------------------------------------------------- db
@main.group()
def db() -> None:
    """Database setup and status."""


@db.command("init")
def db_init() -> None:
    """Create every collection index and the platform's own recurring jobs (idempotent: run it
    on every deploy)."""
    from worker.db.indexes import ensure_indexes

    settings = _settings()
    database = _db(settings, create=True)
    created = ensure_indexes(database)
    click.echo(f"{len(created)} indexes ensured on {_where(settings, database)}")
    jobs = api.ensure_platform_jobs(database)
    click.echo(f"platform jobs created: {', '.join(jobs) or 'none (all present)'}")
    legacy = api.adopt_legacy_internal_jobs(database)
    if legacy:
        click.echo(f"{legacy} unfinished internal jobs from before origin marked as the platform's")


@db.command("status")
def db_status() -> None:
    """Engine, and jobs by status."""
    from worker.db.jobs import JobStore

    settings = _settings()
    database = _db(settings)
    click.echo(json.dumps({**database.server_info(), "location": _where(settings, database)}))
    for status, count in sorted(JobStore(database).count_by_status().items()):
        click.echo(f"{status:<12} {count}")


# ------------------------------------------------------------------------------------- processes
@main.command()
@click.option("--once", is_flag=True, help="Run one poll and exit (cron-style use, debugging).")
def scheduler(once: bool) -> None:
    """Run the polling scheduler until SIGTERM/SIGINT."""
    from worker import metrics
    from worker.broker import build_broker, check_eviction_policy
    from worker.scheduler import Scheduler

    settings = _settings()
    configure_logging(settings.log_level)
    broker = build_broker(settings)
    warning = check_eviction_policy(broker)
    if warning:
        click.secho(f"WARNING: {warning}", fg="red", err=True)
    sched = Scheduler(_db(settings), broker, settings)
    if once:
        click.echo(json.dumps(sched.tick().__dict__))
        return
    try:
        metrics.serve(settings.metrics_host, settings.metrics_port)
    except OSError as exc:
        raise click.ClickException(
            f"cannot serve metrics on {settings.metrics_host}:{settings.metrics_port} ({exc}); "
            "give each scheduler on this host its own MMW_METRICS_PORT"
        ) from exc
    click.echo(
        f"scheduler {sched.owner}: metrics on http://{settings.metrics_host}:"
        f"{settings.metrics_port}/metrics",
        err=True,
    )
    sched.run(_stop_event())


@main.command()
@click.option(
    "--processes", "-p", default=2, show_default=True, type=click.IntRange(1), help="Processes."
)
@click.option(
    "--threads", "-t", default=8, show_default=True, type=click.IntRange(1), help="Threads each."
)
@click.option("--queues", "-Q", multiple=True, help="Only these queues (default: all).")
@click.argument("more_queues", nargs=-1, metavar="[QUEUE]...")
def worker(
    processes: int, threads: int, queues: tuple[str, ...], more_queues: tuple[str, ...]
) -> None:
    """Run Dramatiq worker processes, replaced when they die, until SIGTERM/SIGINT.

    Queues: `-Q social email` or `-Q social -Q email`. A SIGTERM (also one sent to the whole
    process group or cgroup) lets running jobs finish; see docs/operations.md.
    """
    from worker.supervisor import run_worker_instance

    # Not _settings(): plugins are imported by each worker process (worker.app); this process
    # only supervises them and serves their metrics.
    try:
        settings = get_settings()
    except Exception as exc:
        raise click.ClickException(f"invalid configuration: {exc}") from exc
    configure_logging(settings.log_level)
    try:
        code = run_worker_instance(
            processes=processes,
            threads=threads,
            queues=[*queues, *more_queues],
            metrics_folder=str(settings.worker_metrics_dir),
            metrics_host=settings.metrics_host,
            metrics_port=settings.worker_metrics_port,
        )
    except OSError as exc:
        raise click.ClickException(str(exc)) from exc
    sys.exit(code)


@main.command()
@click.option("--demo", is_flag=True, help="Insert sample one-off and recurring jobs.")
@click.option("--threads", default=4, show_default=True, help="Worker threads.")
@click.option("--for", "duration", type=float, default=None, help="Stop after N seconds.")
@click.option(
    "--no-sandboxes", is_flag=True, help="Use the configured API URLs, not the local sandboxes."
)
def dev(demo: bool, threads: int, duration: float | None, no_sandboxes: bool) -> None:
    """Scheduler, worker threads and metrics in one process, on embedded defaults."""
    from worker.dev import run_dev

    settings = _settings()
    configure_logging(settings.log_level)
    stop = _stop_event()
    if duration is not None:
        threading.Timer(duration, stop.set).start()
    run_dev(settings, stop, demo=demo, threads=threads, sandboxes=not no_sandboxes)


# ------------------------------------------------------------------------------------- web
@main.group(invoke_without_command=True)
@click.option("--host", help="Bind address (default MMW_WEB_HOST).")
@click.option("--port", type=int, help="Port (default MMW_WEB_PORT).")
@click.pass_context
def web(ctx: click.Context, host: str | None, port: int | None) -> None:
    """Serve the operators' console and its JSON API (docs at /api/docs)."""
    if ctx.invoked_subcommand is not None:
        return
    import uvicorn

    from worker.web.server import build_console, check_port

    settings = _settings()
    configure_logging(settings.log_level)
    if not settings.web_secret_key:
        raise click.ClickException(
            "set MMW_WEB_SECRET_KEY (a long random string) to sign console sessions"
        )
    if not settings.web_users and not settings.web_tokens:
        raise click.ClickException(
            "no console accounts: set MMW_WEB_USERS (see `mmw web hash-password`) "
            "or MMW_WEB_TOKENS (see `mmw web new-token`)"
        )
    host, port = host or settings.web_host, port or settings.web_port
    try:
        check_port(host, port)
    except OSError as exc:
        raise click.ClickException(f"{exc}; choose another with --port or MMW_WEB_PORT") from None
    click.echo(f"console on http://{host}:{port}/ (API docs: /api/docs)", err=True)
    uvicorn.run(build_console(_db(settings), settings), host=host, port=port, log_level="warning")


@web.command("hash-password")
@click.option("--name", required=True, help="The operator's sign-in name.")
@click.option(
    "--role", type=click.Choice(["viewer", "operator"]), default="viewer", show_default=True
)
@click.password_option(help="Prompted for when not given.")
def web_hash_password(name: str, role: str, password: str) -> None:
    """Print an MMW_WEB_USERS entry (scrypt hash) for one operator."""
    from worker.console.auth import hash_password

    click.echo(json.dumps({name: {"hash": hash_password(password), "role": role}}))


@web.command("new-token")
@click.option("--name", required=True, help="Who or what uses the token (kept in the audit log).")
@click.option(
    "--role", type=click.Choice(["viewer", "operator"]), default="viewer", show_default=True
)
def web_new_token(name: str, role: str) -> None:
    """Make an API token: prints the token (give it to the client) and its MMW_WEB_TOKENS entry."""
    from worker.console.auth import hash_token, new_token

    token = new_token()
    click.echo(f"token: {token}")
    click.echo(
        "MMW_WEB_TOKENS entry: " + json.dumps({hash_token(token): {"name": name, "role": role}})
    )


# ------------------------------------------------------------------------------------- jobs
@main.group()
def jobs() -> None:
    """Submit, inspect and operate jobs."""


def _parse_time(value: str | None) -> dt.datetime | None:
    if value is None:
        return None
    if value == "now":
        return dt.datetime.now(dt.UTC)
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"not an ISO 8601 time: {value!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


@jobs.command("submit")
@click.argument("job_type")
@click.option("--user", "user_id", required=True, help="Owner user_id.")
@click.option("--payload", default="{}", help="Payload as JSON.")
@click.option("--at", "execute_at", help="One-off due time, ISO 8601 (default now).")
@click.option("--cron", help="Recurring: a 5-field cron expression.")
@click.option("--tz", "timezone", help="IANA time zone of the cron expression.")
@click.option("--catch-up", type=click.Choice(["once", "skip", "all"]))
@click.option("--overlap", type=click.Choice(["skip", "buffer", "allow"]))
@click.option("--max-attempts", type=int)
@click.option("--idempotency-key")
def jobs_submit(
    job_type: str,
    user_id: str,
    payload: str,
    execute_at: str | None,
    cron: str | None,
    timezone: str | None,
    catch_up: Any,
    overlap: Any,
    max_attempts: int | None,
    idempotency_key: str | None,
) -> None:
    """Submit a job; prints its job_id."""
    try:
        body = json.loads(payload)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"--payload is not JSON: {exc}") from None
    try:
        job = api.submit(
            _db(_settings()),
            job_type=job_type,
            user_id=user_id,
            payload=body,
            execute_at=_parse_time(execute_at),
            cron=cron,
            timezone=timezone,
            catch_up=catch_up,
            overlap=overlap,
            max_attempts=max_attempts,
            idempotency_key=idempotency_key,
        )
    except (api.InvalidJob, api.JobConflict) as exc:
        raise _fail(exc) from None
    click.echo(job["job_id"])


def _row(job: dict[str, Any]) -> str:
    due = (job.get("schedule") or {}).get("execute_at")
    due_text = due.strftime("%Y-%m-%d %H:%M:%S") if isinstance(due, dt.datetime) else str(due)
    flags = " paused" if job.get("paused") else ""
    error = f"  {job['error'][:60]}" if job.get("error") else ""
    return (
        f"{job.get('job_id', '?'):<38} {job.get('job_type')!s:<20} "
        f"{job.get('status')!s:<11} {due_text:<19} {job.get('attempts') or 0}"
        f"/{job.get('max_attempts') or '-'}{flags}{error}"
    )


@jobs.command("list")
@click.option("--status")
@click.option("--type", "job_type")
@click.option("--user", "user_id")
@click.option("--limit", default=50, show_default=True)
def jobs_list(status: str | None, job_type: str | None, user_id: str | None, limit: int) -> None:
    """Jobs, newest due first."""
    rows = api.list_jobs(
        _db(_settings()), status=status, job_type=job_type, user_id=user_id, limit=limit
    )
    click.echo(f"{'JOB_ID':<38} {'TYPE':<20} {'STATUS':<11} {'DUE (UTC)':<19} ATTEMPTS")
    for job in rows:
        click.echo(_row(job))
    if not rows:
        click.echo("(no jobs match)")


@jobs.command("failed")
@click.option("--type", "job_type")
@click.option("--limit", default=50, show_default=True)
def jobs_failed(job_type: str | None, limit: int) -> None:
    """Failed jobs with their errors (requeue with `mmw jobs retry`)."""
    for job in api.list_jobs(_db(_settings()), status="failed", job_type=job_type, limit=limit):
        click.echo(_row(job))


@jobs.command("show")
@click.argument("job_id")
def jobs_show(job_id: str) -> None:
    """One job as JSON, with its run history."""
    job = api.get(_db(_settings()), job_id)
    if job is None:
        raise click.ClickException(f"no job {job_id!r}")
    job.pop("_id", None)
    click.echo(json.dumps(job, indent=2, default=str))


@jobs.command("cancel")
@click.argument("job_id")
def jobs_cancel(job_id: str) -> None:
    """Cancel a job that has not started."""
    try:
        api.cancel(_db(_settings()), job_id)
    except api.JobConflict as exc:
        raise _fail(exc) from None
    click.echo(f"cancelled {job_id}")


@jobs.command("retry")
@click.argument("job_ids", nargs=-1)
@click.option("--all-failed", is_flag=True, help="Requeue every failed job (with --type).")
@click.option("--type", "job_type")
def jobs_retry(job_ids: tuple[str, ...], all_failed: bool, job_type: str | None) -> None:
    """Requeue failed jobs now, with a fresh attempt budget."""
    database = _db(_settings())
    targets = list(job_ids)
    if all_failed:
        targets += [
            j["job_id"]
            for j in api.list_jobs(database, status="failed", job_type=job_type, limit=10_000)
        ]
    if not targets:
        raise click.UsageError("name job ids or use --all-failed")
    failures = 0
    for job_id in targets:
        try:
            api.retry(database, job_id)
            click.echo(f"requeued {job_id}")
        except api.JobConflict as exc:
            failures += 1
            click.echo(f"skipped: {exc}", err=True)
    if failures:
        sys.exit(1)


@jobs.command("next")
@click.argument("job_id")
@click.option("-n", "count", default=5, show_default=True)
def jobs_next(job_id: str, count: int) -> None:
    """Preview the next fires of a recurring job (UTC and the job's time zone)."""
    from zoneinfo import ZoneInfo

    job = api.get(_db(_settings()), job_id)
    if job is None:
        raise click.ClickException(f"no job {job_id!r}")
    try:
        fires = api.preview_fires(job, count)
    except api.InvalidJob as exc:
        raise _fail(exc) from None
    tz = ZoneInfo(job["schedule"].get("timezone") or "UTC")
    for fire in fires:
        click.echo(f"{fire.isoformat()}  ({fire.astimezone(tz).isoformat()} {tz.key})")


@jobs.command("check-cron")
@click.option("--json", "as_json", is_flag=True, help="One JSON array instead of lines.")
def jobs_check_cron(as_json: bool) -> None:
    """Recurring jobs whose cron expression is refused now or fires differently (exit 1 if any)."""
    from worker.cron_review import review_stored_jobs

    rows = review_stored_jobs(_db(_settings()), dt.datetime.now(dt.UTC))
    if as_json:
        click.echo(json.dumps(rows, indent=2, default=str))
    else:
        for row in rows:
            for reason in row["reasons"]:
                click.echo(
                    f"{row['job_id']}  '{row['cron_expression']}' ({row['timezone']}): {reason}"
                )
        if not rows:
            click.echo("no stored cron expression changed meaning")
    if rows:
        sys.exit(1)


def _target(job_id: str | None, user_id: str | None, job_type: str | None) -> dict[str, str]:
    named = {
        k: v
        for k, v in (("job_id", job_id), ("user_id", user_id), ("job_type", job_type))
        if v is not None
    }
    if len(named) != 1:
        raise click.UsageError("name exactly one of JOB_ID, --user or --type")
    return named


@jobs.command("pause")
@click.argument("job_id", required=False)
@click.option("--user", "user_id")
@click.option("--type", "job_type")
@click.option("--reason")
def jobs_pause(
    job_id: str | None, user_id: str | None, job_type: str | None, reason: str | None
) -> None:
    """Hold a job, a user's jobs or a job type's jobs (running ones finish)."""
    try:
        api.pause(_db(_settings()), reason=reason, **_target(job_id, user_id, job_type))
    except api.JobConflict as exc:
        raise _fail(exc) from None
    click.echo("paused")


@jobs.command("resume")
@click.argument("job_id", required=False)
@click.option("--user", "user_id")
@click.option("--type", "job_type")
def jobs_resume(job_id: str | None, user_id: str | None, job_type: str | None) -> None:
    """Release what `mmw jobs pause` held."""
    try:
        api.resume(_db(_settings()), **_target(job_id, user_id, job_type))
    except api.JobConflict as exc:
        raise _fail(exc) from None
    click.echo("resumed")


# ------------------------------------------------------------------------------------- approvals
@main.group()
def approvals() -> None:
    """Approval requests of the AI agents (the product app normally answers them)."""


@approvals.command("list")
@click.option("--user", "user_id")
@click.option("--all", "show_all", is_flag=True, help="Include resolved requests.")
def approvals_list(user_id: str | None, show_all: bool) -> None:
    """Pending approval requests, newest first."""
    from worker.db import names

    query: dict[str, Any] = {} if show_all else {"status": "pending"}
    if user_id:
        query["user_id"] = user_id
    rows = _db(_settings())[names.APPROVAL_REQUESTS].find(
        query, sort=[("created_at", -1)], limit=100
    )
    for row in rows:
        click.echo(
            f"{row['request_id']:<40} {row.get('request_type')!s:<14} {row.get('status')!s:<9} "
            f"user={row.get('user_id')} campaign={row.get('campaign_id')}"
        )
    if not rows:
        click.echo("(no approval requests)")


def _resolve(request_id: str, approved: bool, notes: str | None) -> None:
    from worker.agents.approvals import ApprovalConflict, resolve
    from worker.db import names

    database = _db(_settings())
    request = database[names.APPROVAL_REQUESTS].find_one({"request_id": request_id})
    if request is None:
        raise click.ClickException(f"no approval request {request_id!r}")
    try:
        resolve(
            database,
            request_id=request_id,
            user_id=request["user_id"],
            approved=approved,
            by="mmw-cli",
            notes=notes,
        )
    except ApprovalConflict as exc:
        raise _fail(exc) from None
    click.echo(f"{'approved' if approved else 'rejected'} {request_id}")


@approvals.command("approve")
@click.argument("request_id")
@click.option("--notes")
def approvals_approve(request_id: str, notes: str | None) -> None:
    """Approve a request; the waiting work is released at once."""
    _resolve(request_id, True, notes)


@approvals.command("reject")
@click.argument("request_id")
@click.option("--reason", required=True)
def approvals_reject(request_id: str, reason: str) -> None:
    """Reject a request; the waiting work ends with the reason."""
    _resolve(request_id, False, reason)


if __name__ == "__main__":
    main()
