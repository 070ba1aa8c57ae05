"""``deliver_webhook`` end to end: pinned connections, secrets, seals and bad URLs, on a Runner.

Wall time throughout (the receiver verifies signature timestamps against its own clock).
Nothing leaves loopback: the actor's ``NETWORK`` is replaced by fakes where names resolve.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import httpx2
import pytest
from prometheus_client import REGISTRY

import worker.actors.webhooks as webhook_actor
from worker.actors.lifecycle import HANDLERS, Runner
from worker.db import names
from worker.integrations.webhooks import Network, generate_secret
from worker.sandbox import SandboxServer
from worker.settings import Settings
from worker.webhooks import emit_event

from .test_webhooks_integration import Receiver
from .test_webhooks_ssrf import PUBLIC, FakeResolver, LoopbackOnly, RawServer
from .zoho_support import claim_and_run

USER = "user_hooks"


@pytest.fixture
def runner(db: Any, settings: Settings) -> Iterator[Runner]:
    import worker.actors  # noqa: F401 - registers the handlers

    hooked = settings.model_copy(
        update={"webhook_allow_private": True, "webhook_timeout_seconds": 1.0,
                "webhook_deactivate_after": 3}
    )  # fmt: skip
    run = Runner(db, hooked, handlers=HANDLERS)
    yield run
    run.close()


def allow_port(runner: Runner, url: str, *, allow_private: bool = True) -> None:
    """Sandboxes listen on random ports: let this runner's webhooks use ``url``'s."""
    runner.settings = runner.settings.model_copy(
        update={"webhook_allowed_ports": [httpx2.URL(url).port or 80],
                "webhook_allow_private": allow_private}
    )  # fmt: skip


def add_hook(db: Any, url: str, secret: str, hook_id: str = "wh_1") -> None:
    db[names.WEBHOOKS].insert_one(
        {"webhook_id": hook_id, "user_id": USER, "name": "ops", "url": url, "events": ["*"],
         "secret": secret, "active": True, "created_at": dt.datetime.now(dt.UTC)}
    )  # fmt: skip


def hook(db: Any, hook_id: str = "wh_1") -> dict[str, Any]:
    return db[names.WEBHOOKS].find_one({"webhook_id": hook_id})


def audits(db: Any, action: str) -> list[dict[str, Any]]:
    return list(db[names.AUDIT_LOG].find({"action": action}))


def test_rebinding_resolver_never_reaches_loopback_through_the_actor(
    db: Any, runner: Runner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """allow_private off; the resolver answers public to the check and 127.0.0.1 afterwards."""
    network = Network(resolve=FakeResolver([PUBLIC], ["127.0.0.1"]), backend=LoopbackOnly())
    monkeypatch.setattr(webhook_actor, "NETWORK", network)
    with RawServer() as server:
        url = f"http://localhost:{server.port}/hook"
        allow_port(runner, url, allow_private=False)
        add_hook(db, url, generate_secret())
        (job_id,) = emit_event(db, USER, "post.published", {"post_id": "p1"})
        done = claim_and_run(runner, job_id)
    assert done["status"] == "pending" and "not reachable" in done["error"]
    assert network.backend.connects == [(PUBLIC, server.port)]  # type: ignore[union-attr]
    assert len(network.resolve.asked) == 1  # type: ignore[attr-defined]
    assert server.connections == 0
    assert hook(db)["consecutive_failures"] == 1


def test_delivery_reaches_the_checked_address_under_its_name(
    db: Any, runner: Runner, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = generate_secret()
    receiver = Receiver(secret, [])
    resolve = FakeResolver(["127.0.0.1"], ["10.9.9.9"])
    monkeypatch.setattr(webhook_actor, "NETWORK", Network(resolve=resolve))
    with SandboxServer(receiver.router) as server:
        url = f"http://faß.test:{httpx2.URL(server.url).port}/hook"
        allow_port(runner, url)
        add_hook(db, url, secret)
        (job_id,) = emit_event(db, USER, "post.published", {"post_id": "p1"})
        done = claim_and_run(runner, job_id)
    assert done["status"] == "completed", done.get("error")
    ((headers, _, verified),) = receiver.received
    assert verified and headers["host"].startswith("xn--fa-hia.test:")
    assert [host for host, _ in resolve.asked] == ["xn--fa-hia.test"]


@pytest.mark.parametrize("secret", ["whsec_", "whsec_!!!!", "whsec_abc", "plain-text-secret"])
def test_invalid_secret_deactivates_with_a_reason(db: Any, runner: Runner, secret: str) -> None:
    receiver = Receiver(generate_secret(), [])
    before = REGISTRY.get_sample_value(
        "mmw_webhooks_deactivated_total", {"reason": "invalid_secret"}
    )
    with SandboxServer(receiver.router) as server:
        allow_port(runner, server.url)
        add_hook(db, f"{server.url}/hook", secret)
        (job_id,) = emit_event(db, USER, "post.published", {"post_id": "p1"})
        done = claim_and_run(runner, job_id)
    assert done["status"] == "failed" and "webhook secret" in done["error"]
    assert receiver.received == []
    stored = hook(db)
    assert stored["active"] is False and "webhook secret" in stored["deactivated_reason"]
    assert stored["consecutive_failures"] == 1
    after = REGISTRY.get_sample_value(
        "mmw_webhooks_deactivated_total", {"reason": "invalid_secret"}
    )
    assert after == (before or 0) + 1
    assert len(audits(db, "webhook_deactivated")) == 1
    assert secret not in str(done) + str(audits(db, "webhook_deactivated"))


@pytest.mark.parametrize(
    "tamper",
    [{"payload.data": {"post_id": "forged"}}, {"payload.seal": ""},
     {"payload.event": "email.sent"}, {"payload.event_id": "evt_other"}],
)  # fmt: skip
def test_only_events_the_platform_emitted_are_signed(
    db: Any, runner: Runner, tamper: dict[str, Any]
) -> None:
    """A deliver_webhook job written or edited by anyone else is refused before any request."""
    secret = generate_secret()
    receiver = Receiver(secret, [])
    with SandboxServer(receiver.router) as server:
        allow_port(runner, server.url)
        add_hook(db, f"{server.url}/hook", secret)
        (job_id,) = emit_event(db, USER, "post.published", {"post_id": "p1"})
        db[names.SCHEDULED_JOBS].update_one({"job_id": job_id}, {"$set": tamper})
        done = claim_and_run(runner, job_id)
    assert done["status"] == "failed" and "not emitted by the platform" in done["error"]
    assert receiver.received == [] and hook(db)["active"] is True
    assert len(audits(db, "webhook_event_refused")) == 1


@pytest.mark.parametrize(
    ("url", "reason"),
    [("https://hooks.example.com/in\tx", "control or whitespace"),
     ("https://hooks.example.com:22/", "port 22 is not allowed"),
     ("http://[::1/", "invalid"), (None, "missing")],
)  # fmt: skip
def test_bad_urls_fail_with_a_reason_and_count(
    db: Any, runner: Runner, url: str | None, reason: str
) -> None:
    """A URL with a tab no longer escapes the delivery error handling: permanent and counted."""
    add_hook(db, url, generate_secret())  # type: ignore[arg-type]
    job_ids = [emit_event(db, USER, "post.published", {"n": n})[0] for n in range(3)]
    results = [claim_and_run(runner, job_id) for job_id in job_ids]
    assert [r["status"] for r in results] == ["failed"] * 3
    assert reason in results[0]["error"] and "deactivated after 3 failures" in results[2]["error"]
    assert results[0]["attempts"] == 1
    assert hook(db)["active"] is False
    assert len(audits(db, "webhook_target_refused")) == 3


def test_unresolvable_host_is_retried_and_counted(
    db: Any, runner: Runner, monkeypatch: pytest.MonkeyPatch
) -> None:
    def nxdomain(host: str, port: int) -> list[str]:
        raise OSError("Name or service not known")

    monkeypatch.setattr(webhook_actor, "NETWORK", Network(resolve=nxdomain))
    add_hook(db, "https://gone.example.com/in", generate_secret())
    (job_id,) = emit_event(db, USER, "post.published", {"post_id": "p1"})
    done = claim_and_run(runner, job_id)
    assert done["status"] == "pending" and "does not resolve" in done["error"]
    assert hook(db)["consecutive_failures"] == 1


def test_webhook_data_is_redacted_before_it_is_stored_and_sent(db: Any, runner: Runner) -> None:
    secret = generate_secret()
    receiver = Receiver(secret, [])
    leaked = "ya29.a0AfH6SMBx-leaked-google-token-0123456789"
    with SandboxServer(receiver.router) as server:
        allow_port(runner, server.url)
        add_hook(db, f"{server.url}/hook", secret)
        (job_id,) = emit_event(
            db, USER, "job.failed",
            {"error": f"401 for {leaked}", "refresh_token": "rt-1", "at": dt.datetime.now(dt.UTC)},
        )  # fmt: skip
        stored = db[names.SCHEDULED_JOBS].find_one({"job_id": job_id})
        done = claim_and_run(runner, job_id)
    assert done["status"] == "completed", done.get("error")
    ((_, body, verified),) = receiver.received
    assert verified
    for text in (str(stored), body.decode()):
        assert leaked not in text and "rt-1" not in text and "[redacted]" in text
