"""Worker processes killed with SIGKILL mid-sync and right after Zoho accepted a send."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from worker.actors.lifecycle import HANDLERS, Runner
from worker.api import submit
from worker.clock import wall_clock
from worker.db import names
from worker.sandbox import Faults
from worker.sandbox.zoho import ZohoSandbox
from worker.settings import Settings

from .test_zoho_actors import USER, connect
from .zoho_support import claim_and_run

pytestmark = pytest.mark.crash

CHILD = """
import json, sys
from worker.db.client import open_embedded, open_mongodb
from worker.settings import Settings
import worker.actors
from worker.actors.lifecycle import HANDLERS, Runner
from tests.zoho_support import claim_and_run
args = json.loads(sys.argv[1])
url = args.pop("mongo_url")
db = open_mongodb(url, args.pop("db")) if url else open_embedded(args.pop("folder"), args.pop("db"))
runner = Runner(db, Settings(**args.pop("settings")), handlers=HANDLERS)
claim_and_run(runner, args["job_id"])
"""


def spawn_child(db: Any, settings: Settings, tmp_path: Path, job_id: str) -> subprocess.Popen:
    """A separate worker process that claims and runs ``job_id`` on the same database."""
    keep = {
        "zoho_accounts_url", "zoho_api_domain", "zoho_campaigns_url", "zoho_client_id",
        "zoho_client_secret", "lease_seconds", "http_timeout_seconds",
    }  # fmt: skip
    plain = {k: v for k, v in settings.model_dump(mode="json").items() if k in keep}
    args = {
        "mongo_url": os.environ.get("MONGODB_TEST_URL"), "db": db.name,
        "folder": str(tmp_path / "mongo"), "settings": plain, "job_id": job_id,
    }  # fmt: skip
    root = Path(__file__).resolve().parent.parent
    return subprocess.Popen([sys.executable, "-c", CHILD, json.dumps(args)], cwd=root)


def test_sigkilled_sync_resumes(db: Any, settings: Settings, tmp_path: Path) -> None:
    import worker.actors  # noqa: F401 - registers the handlers

    state = ZohoSandbox(clock=wall_clock)
    state.seed("Contacts", 2600)
    # Every request waits 50 ms so the parent can kill the child between pages.
    with state.server(faults=Faults(timeout=1.0, timeout_seconds=0.05)) as server:
        zsettings = settings.model_copy(
            update={
                **state.settings_overrides(server.url), "lease_seconds": 30.0,
            }
        )  # fmt: skip
        connect(db, state)
        job = submit(db, job_type="zoho_sync", user_id=USER, payload={"modules": ["Contacts"]})
        child = spawn_child(db, zsettings, tmp_path, job["job_id"])
        deadline = time.monotonic() + 30
        page = 0
        while time.monotonic() < deadline and child.poll() is None:
            doc = db[names.ZOHO_TOKENS].find_one({"user_id": USER}) or {}
            current = ((doc.get("crm_sync") or {}).get("Contacts") or {}).get("pass") or {}
            page = int(current.get("page") or 0)
            if page >= 4:
                os.kill(child.pid, signal.SIGKILL)
                break
            time.sleep(0.02)
        child.wait(timeout=10)
        assert child.returncode == -signal.SIGKILL, "the child finished before it was killed"
        served_before = state.records_served["Contacts"]
        assert 0 < served_before < 2600
        db[names.SCHEDULED_JOBS].update_one(
            {"job_id": job["job_id"]}, {"$set": {"status": "pending"}}
        )
        runner = Runner(db, zsettings, handlers=HANDLERS)
        try:
            done = claim_and_run(runner, job["job_id"])
        finally:
            runner.close()
    assert done["status"] == "completed", done.get("error")
    assert done["result"]["modules"]["Contacts"]["fetched"] == 2600
    # Resumed at the checkpoint: at most the page in flight (plus one being read) came twice.
    assert state.records_served["Contacts"] - 2600 <= 400
    ids = [d["record_id"] for d in db[names.ZOHO_CRM_RECORDS].find({"user_id": USER})]
    assert len(ids) == len(set(ids)) == 2600


def test_sigkill_after_zoho_accepted_the_send_sends_once(
    db: Any, settings: Settings, tmp_path: Path
) -> None:
    import worker.actors  # noqa: F401 - registers the handlers

    from .test_email_webhook_actors import email_doc

    state = ZohoSandbox(clock=wall_clock)
    state.hold_after_send = threading.Event()
    with state.server() as server:
        zsettings = settings.model_copy(
            update={
                "zoho_accounts_url": server.url, "zoho_campaigns_url": server.url,
                "zoho_client_id": state.client_id, "zoho_client_secret": state.client_secret,
                "lease_seconds": 30.0,
            }
        )  # fmt: skip
        connect(db, state)
        email_doc(db, state)
        job = submit(db, job_type="send_email", user_id=USER, payload={"campaign_id": "ec_1"})
        child = spawn_child(db, zsettings, tmp_path, job["job_id"])
        deadline = time.monotonic() + 30
        while not state.sends and time.monotonic() < deadline and child.poll() is None:
            time.sleep(0.02)
        os.kill(child.pid, signal.SIGKILL)  # Zoho has sent; the worker never hears back
        child.wait(timeout=10)
        state.hold_after_send.set()
        state.hold_after_send = None
        assert child.returncode == -signal.SIGKILL and len(state.sends) == 1
        assert db[names.EMAIL_CAMPAIGNS].find_one({"campaign_id": "ec_1"})["status"] == "draft"
        db[names.SCHEDULED_JOBS].update_one(
            {"job_id": job["job_id"]}, {"$set": {"status": "pending"}}
        )
        runner = Runner(db, zsettings, handlers=HANDLERS)
        try:
            done = claim_and_run(runner, job["job_id"])
        finally:
            runner.close()
    assert done["status"] == "completed", done.get("error")
    assert len(state.sends) == 1 and len(state.campaigns) == 1
    doc = db[names.EMAIL_CAMPAIGNS].find_one({"campaign_id": "ec_1"})
    assert doc["status"] == "sent" and doc["zoho_campaign_key"] in state.campaigns


def test_worker_processes_share_one_refresh(db: Any, settings: Settings, tmp_path: Path) -> None:
    """Four worker processes start with the same expired token: Zoho sees one grant."""
    state = ZohoSandbox(clock=wall_clock)
    state.seed("Accounts", 2)
    with state.server() as server:
        zsettings = settings.model_copy(
            update={**state.settings_overrides(server.url), "lease_seconds": 30.0}
        )
        refresh_token = connect(db, state)
        jobs = [
            submit(db, job_type="zoho_sync", user_id=USER, payload={"modules": ["Accounts"]})
            for _ in range(4)
        ]
        children = [spawn_child(db, zsettings, tmp_path, job["job_id"]) for job in jobs]
        for child in children:
            child.wait(timeout=60)
    statuses = [db[names.SCHEDULED_JOBS].find_one({"job_id": j["job_id"]})["status"] for j in jobs]
    assert statuses == ["completed"] * 4
    assert state.grants_for(refresh_token) == 1
