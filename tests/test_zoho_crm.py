"""Zoho CRM client against the sandbox: paging past 2,000, incremental reads, errors, credits."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx2
import pytest

from worker.clock import wall_clock
from worker.errors import PermanentFailure, RetryLater, TokenExpired
from worker.integrations.zoho import (
    CrmClient,
    Cursor,
    MemoryTokenProvider,
    PageTokenInvalid,
    RecordPage,
    ZohoAuth,
    is_token_rejected,
    next_cursor,
    refresh_access_token,
)
from worker.integrations.zoho.crm import crm_error
from worker.sandbox import Faults, SandboxServer
from worker.sandbox.zoho import ZohoSandbox, start_zoho_sandbox

FIELDS = ("Last_Name", "Email", "Modified_Time")


@pytest.fixture()
def sandbox() -> Iterator[tuple[SandboxServer, ZohoSandbox]]:
    server, zoho = start_zoho_sandbox(clock=wall_clock)
    yield server, zoho
    server.stop()


def provider_for(server: SandboxServer, zoho: ZohoSandbox) -> MemoryTokenProvider:
    refresh_token = zoho.add_refresh_token("u1")
    http = httpx2.Client(timeout=5)

    def refresh() -> object:
        return refresh_access_token(
            http, server.url, refresh_token=refresh_token, client_id=zoho.client_id,
            client_secret=zoho.client_secret, now=datetime.now(UTC),
        )  # fmt: skip

    return MemoryTokenProvider(refresh, lambda: datetime.now(UTC))


def crm(server: SandboxServer, zoho: ZohoSandbox, **kw: object) -> CrmClient:
    return CrmClient(server.url, auth=ZohoAuth(provider_for(server, zoho)), timeout=5, **kw)


def read_all(client: CrmClient, module: str, since: datetime | None = None) -> list[dict]:
    records: list[dict] = []
    cursor: Cursor | None = Cursor()
    while cursor is not None:
        page = client.list_records(module, fields=FIELDS, cursor=cursor, modified_since=since)
        records.extend(page.records)
        cursor = next_cursor(cursor, page, 200)
    return records


def page(more: bool, token: str | None = "tok") -> RecordPage:
    return RecordPage(records=[{}], more_records=more, next_page_token=token)


@pytest.mark.parametrize(
    ("current", "fetched", "per_page", "expected"),
    [
        (Cursor(1), page(False), 200, None),
        (Cursor(1), page(True), 200, Cursor(2)),
        (Cursor(9), page(True), 200, Cursor(10)),
        (Cursor(10), page(True, "t11"), 200, Cursor(11, "t11")),
        (Cursor(11, "t11"), page(True, "t12"), 200, Cursor(12, "t12")),
        (Cursor(20), page(True, "x"), 100, Cursor(21, "x")),
        (Cursor(19), page(True, "x"), 100, Cursor(20)),
    ],
)
def test_next_cursor_switches_to_page_token_past_2000(
    current: Cursor, fetched: RecordPage, per_page: int, expected: Cursor | None
) -> None:
    assert next_cursor(current, fetched, per_page) == expected


def test_next_cursor_without_token_past_2000_is_permanent() -> None:
    with pytest.raises(PermanentFailure):
        next_cursor(Cursor(10), page(True, None), 200)


@pytest.mark.parametrize(
    ("status", "body", "outcome"),
    [
        (429, {"code": "TOO_MANY_REQUESTS", "details": {"retry_after": 60}}, RetryLater),
        (429, {"code": "LIMIT_REACHED"}, RetryLater),
        (400, {"code": "LIMIT_REACHED"}, RetryLater),
        (500, {"code": "INTERNAL_ERROR"}, RetryLater),
        (401, {"code": "INVALID_TOKEN"}, TokenExpired),
        (401, {"code": "OAUTH_SCOPE_MISMATCH"}, PermanentFailure),
        (403, {"code": "NO_PERMISSION"}, PermanentFailure),
        (400, {"code": "EXPIRED_VALUE"}, PageTokenInvalid),
        (400, {"code": "TOKEN_BOUND_DATA_MISMATCH"}, PageTokenInvalid),
        (400, {"code": "DISCRETE_PAGINATION_LIMIT_EXCEEDED"}, PermanentFailure),
        (400, None, PermanentFailure),
    ],
)
def test_crm_error_mapping(status: int, body: object, outcome: type) -> None:
    assert type(crm_error(status, body, httpx2.Headers())) is outcome


def test_rate_limit_delay_comes_from_details_or_header() -> None:
    details = crm_error(429, {"code": "TOO_MANY_REQUESTS", "details": {"retry_after": 60}}, {})
    header = crm_error(429, {"code": "TOO_MANY_REQUESTS"}, httpx2.Headers({"Retry-After": "7"}))
    assert (details.delay, header.delay) == (60, 7)


@pytest.mark.parametrize(
    ("status", "body", "rejected"),
    [
        (401, {"code": "INVALID_TOKEN", "message": "invalid oauth token"}, True),
        (401, {"code": "OAUTH_SCOPE_MISMATCH"}, False),
        (401, None, True),
        (200, {"status": "error", "code": "1007"}, True),
        (200, {"status": "success", "code": 0}, False),
        (400, {"code": "INVALID_DATA"}, False),
    ],
)
def test_is_token_rejected(status: int, body: object, rejected: bool) -> None:
    assert is_token_rejected(status, body) is rejected


def test_full_listing_past_2000_records(sandbox: tuple[SandboxServer, ZohoSandbox]) -> None:
    server, zoho = sandbox
    zoho.seed("Contacts", 5000)
    with crm(server, zoho) as client:
        records = read_all(client, "Contacts")
    assert len(records) == len({r["id"] for r in records}) == 5000
    assert set(records[0]) == {"id", *FIELDS}
    uses_token = [r for r in server.requests if "page_token" in r.query]
    assert len(uses_token) == 15  # pages 11..25


def test_incremental_listing_returns_only_changed(
    sandbox: tuple[SandboxServer, ZohoSandbox],
) -> None:
    server, zoho = sandbox
    ids = zoho.seed("Deals", 300)
    since = datetime.now(UTC) - timedelta(seconds=5)
    zoho.modify("Deals", ids[10:60])
    with crm(server, zoho) as client:
        changed = read_all(client, "Deals", since)
        assert sorted(r["id"] for r in changed) == sorted(ids[10:60])
        nothing = client.list_records("Deals", fields=FIELDS, modified_since=datetime.now(UTC))
    assert nothing.records == [] and not nothing.more_records  # HTTP 204


def test_expired_access_token_is_refreshed_once_and_resent(
    sandbox: tuple[SandboxServer, ZohoSandbox],
) -> None:
    server, zoho = sandbox
    zoho.seed("Leads", 3)
    provider = provider_for(server, zoho)
    with CrmClient(server.url, auth=ZohoAuth(provider), timeout=5) as client:
        assert len(client.list_records("Leads", fields=FIELDS).records) == 3
        zoho.expire_access_tokens()  # Zoho dropped it before our cached expiry
        assert len(client.list_records("Leads", fields=FIELDS).records) == 3
    assert provider.refreshes == 2
    rejected, resent = [r for r in server.requests if r.path.startswith("/crm")][-2:]
    assert rejected.headers["authorization"] != resent.headers["authorization"]
    assert resent.headers["authorization"].startswith("Zoho-oauthtoken 1000.")


def test_concurrent_callers_share_one_refresh(sandbox: tuple[SandboxServer, ZohoSandbox]) -> None:
    server, zoho = sandbox
    zoho.seed("Accounts", 1)
    provider = provider_for(server, zoho)
    errors: list[BaseException] = []

    def call() -> None:
        try:
            with CrmClient(server.url, auth=ZohoAuth(provider), timeout=5) as client:
                client.list_records("Accounts", fields=FIELDS)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=call) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and provider.refreshes == 1 and len(zoho.grants) == 1


def test_credit_exhaustion_is_retry_later(sandbox: tuple[SandboxServer, ZohoSandbox]) -> None:
    server, zoho = sandbox
    zoho.seed("Contacts", 1)
    zoho.credits = 1
    with crm(server, zoho) as client:
        client.list_records("Contacts", fields=FIELDS)
        with pytest.raises(RetryLater, match="LIMIT_REACHED") as raised:
            client.list_records("Contacts", fields=FIELDS)
    assert raised.value.delay == 3600


def test_request_errors_are_permanent(sandbox: tuple[SandboxServer, ZohoSandbox]) -> None:
    server, zoho = sandbox
    with crm(server, zoho) as client:
        with pytest.raises(PermanentFailure, match="REQUIRED_PARAM_MISSING"):
            client.list_records("Contacts", fields=())
        with pytest.raises(PermanentFailure, match="INVALID_MODULE"):
            client.list_records("Nope", fields=FIELDS)
        with pytest.raises(PermanentFailure, match="DISCRETE_PAGINATION"):
            client.list_records("Contacts", fields=FIELDS, cursor=Cursor(11))
        with pytest.raises(PageTokenInvalid):
            client.list_records("Contacts", fields=FIELDS, cursor=Cursor(11, "bogus"))


def test_page_token_bound_to_its_parameters(sandbox: tuple[SandboxServer, ZohoSandbox]) -> None:
    server, zoho = sandbox
    zoho.seed("Contacts", 5)
    with crm(server, zoho) as client:
        first = client.list_records("Contacts", fields=FIELDS, per_page=2)
        assert first.next_page_token
        with pytest.raises(PageTokenInvalid, match="TOKEN_BOUND_DATA_MISMATCH"):
            client.list_records(
                "Contacts", fields=("Email",), per_page=2,
                cursor=Cursor(2, first.next_page_token),
            )  # fmt: skip


def test_v2_needs_no_fields(sandbox: tuple[SandboxServer, ZohoSandbox]) -> None:
    server, zoho = sandbox
    zoho.seed("Contacts", 1)
    with crm(server, zoho, version="v2") as client:
        (record,) = client.list_records("Contacts", fields=()).records
    assert record["Email"].endswith("@example.com") and "Phone" in record


def test_injected_faults_map_to_retry_later() -> None:
    zoho = ZohoSandbox(clock=wall_clock)
    zoho.seed("Contacts", 1)
    with zoho.server(faults=Faults(rate_limit=1.0)) as server:
        client = CrmClient(server.url, auth=ZohoAuth(StaticProvider(zoho)), timeout=5)
        with pytest.raises(RetryLater, match="TOO_MANY_REQUESTS"):
            client.list_records("Contacts", fields=FIELDS)
    with zoho.server(faults=Faults(server_error=1.0)) as server:
        client = CrmClient(server.url, auth=ZohoAuth(StaticProvider(zoho)), timeout=5)
        with pytest.raises(RetryLater, match="INTERNAL_ERROR"):
            client.list_records("Contacts", fields=FIELDS)
    with zoho.server(faults=Faults(timeout=1.0, timeout_seconds=0.5)) as server:
        client = CrmClient(server.url, auth=ZohoAuth(StaticProvider(zoho)), timeout=0.2)
        with pytest.raises(RetryLater, match="timed out"):
            client.list_records("Contacts", fields=FIELDS)


class StaticProvider:
    """A valid token issued directly by the sandbox; a rejection is final."""

    def __init__(self, zoho: ZohoSandbox) -> None:
        self.token = zoho.issue_access_token()

    def access_token(self) -> str:
        return self.token

    def refresh(self, rejected: str) -> str:
        raise TokenExpired("no refresh in this test")


def test_wrong_header_prefix_is_rejected(sandbox: tuple[SandboxServer, ZohoSandbox]) -> None:
    server, zoho = sandbox
    token = zoho.issue_access_token()
    response = httpx2.get(
        f"{server.url}/crm/v8/Contacts", params={"fields": "Email"},
        headers={"Authorization": f"Bearer {token}"},
    )  # fmt: skip
    assert response.status_code == 401 and response.json()["code"] == "INVALID_TOKEN"
