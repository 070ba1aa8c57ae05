"""Zoho Campaigns client on the sandbox: envelopes, create/send/schedule, reports, lookup."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from worker.clock import wall_clock
from worker.errors import OutcomeUnknown, PermanentFailure, RetryLater, TokenExpired
from worker.integrations.zoho import (
    AlreadySent,
    CampaignsClient,
    CampaignsError,
    MemoryTokenProvider,
    ZohoAuth,
    parse_report,
    schedule_params,
)
from worker.integrations.zoho.campaigns import campaigns_payload
from worker.sandbox import Faults, SandboxServer
from worker.sandbox.zoho import ZohoSandbox


class SandboxProvider:
    """Issues tokens straight from the sandbox state and counts refreshes."""

    def __init__(self, zoho: ZohoSandbox) -> None:
        self.zoho = zoho
        self.token = zoho.issue_access_token()
        self.refreshes = 0

    def access_token(self) -> str:
        return self.token

    def refresh(self, rejected: str) -> str:
        self.refreshes += 1
        self.token = self.zoho.issue_access_token()
        return self.token


@pytest.fixture()
def zoho() -> ZohoSandbox:
    return ZohoSandbox(clock=wall_clock)


@pytest.fixture()
def server(zoho: ZohoSandbox) -> Iterator[SandboxServer]:
    with zoho.server() as running:
        yield running


def client_for(server: SandboxServer, zoho: ZohoSandbox, timeout: float = 5) -> CampaignsClient:
    return CampaignsClient(server.url, auth=ZohoAuth(SandboxProvider(zoho)), timeout=timeout)


def create(client: CampaignsClient, list_key: str, name: str = "Spring sale [mmw:abc]") -> str:
    return client.create_campaign(
        name=name, subject="Hello", from_email="news@example.com", list_key=list_key,
        content_url="https://example.com/mail.html", from_name="News",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("status", "body", "outcome"),
    [
        (200, {"status": "error", "code": "1004", "message": "Wrong URL entered"}, CampaignsError),
        (200, {"status": "error", "code": "6600"}, AlreadySent),
        (200, {"status": "error", "code": "2502"}, RetryLater),
        (200, {"status": "error", "code": "6001"}, RetryLater),
        (200, {"status": "error", "code": "1007"}, TokenExpired),
        (200, {"response": {"code": "6301", "message": "Invalid campaign key"}}, CampaignsError),
        (429, {"status": "error"}, RetryLater),
        (500, None, RetryLater),
        (200, "not json", RetryLater),
    ],
)
def test_error_envelopes(status: int, body: object, outcome: type) -> None:
    with pytest.raises(outcome) as raised:
        campaigns_payload(status, body)
    assert type(raised.value) is outcome


@pytest.mark.parametrize(
    "body",
    [
        {"status": "success", "code": 0, "list_of_details": []},
        {"message": "ok", "campaignKey": "k", "code": "200", "uri": "/api/v1.1/createCampaign"},
        {"response": {"code": "200", "campaign_status": "inprogress"}},
        {"Code": "200", "URI": "/x"},
    ],
)
def test_success_envelopes(body: dict) -> None:
    assert isinstance(campaigns_payload(200, body), dict)


@pytest.mark.parametrize(
    ("send_at", "expected"),
    [
        (datetime(2026, 12, 1, 9, 0, tzinfo=UTC), ("12/01/2026", "9", "00", "AM")),
        (datetime(2026, 12, 1, 9, 0, 30, tzinfo=UTC), ("12/01/2026", "9", "05", "AM")),
        (datetime(2026, 12, 1, 13, 7, tzinfo=UTC), ("12/01/2026", "1", "10", "PM")),
        (datetime(2026, 12, 1, 0, 0, tzinfo=UTC), ("12/01/2026", "12", "00", "AM")),
        (datetime(2026, 12, 1, 12, 55, tzinfo=UTC), ("12/01/2026", "12", "55", "PM")),
        (datetime(2026, 12, 31, 23, 58, tzinfo=UTC), ("01/01/2027", "12", "00", "AM")),
        (
            datetime(2026, 12, 1, 10, 0, tzinfo=UTC).astimezone(ZoneInfo("Asia/Kolkata")),
            ("12/01/2026", "10", "00", "AM"),
        ),
    ],
)
def test_schedule_params_round_up_to_five_minutes_in_utc(
    send_at: datetime, expected: tuple[str, str, str, str]
) -> None:
    params = schedule_params(send_at)
    got = (params["scheduledate"], params["schedulehour"], params["scheduleminute"])
    assert (*got, params["am_pm"]) == expected


def test_parse_report_reads_string_figures() -> None:
    payload = {
        "campaign-reports": [
            {"emails_sent_count": "100", "delivered_count": "95", "opens_count": "40",
             "unique_clicks_count": "10", "bounces_count": "5", "unsub_count": "1",
             "open_percent": "42.11", "unique_clicked_percent": "10.53",
             "delivered_percent": "95.00", "bounce_percent": "5", "unsubscribe_percent": "1"}
        ]
    }  # fmt: skip
    report = parse_report(payload)
    assert report is not None
    assert (report["sent"], report["delivered"], report["opened"]) == (100, 95, 40)
    assert (report["clicked"], report["bounced"], report["unsubscribed"]) == (10, 5, 1)
    assert (report["open_rate"], report["click_rate"]) == (42.11, 10.53)
    assert parse_report({"campaign-reports": []}) is None


def test_create_send_report_and_send_once(server: SandboxServer, zoho: ZohoSandbox) -> None:
    list_key = zoho.add_mailing_list("Newsletter", contacts=200)
    with client_for(server, zoho) as client:
        key = create(client, list_key)
        assert client.campaign_report(key) is None  # not sent yet: code 3001
        assert client.send_campaign(key) == "inprogress"
        with pytest.raises(AlreadySent):
            client.send_campaign(key)
        report = client.campaign_report(key)
        found = client.find_campaign("[mmw:abc]")
    assert zoho.sends_of(key) == 1
    assert report is not None and report["sent"] == 200 and report["delivered"] == 190
    assert found is not None and (found.key, found.status) == (key, "sent")


def test_schedule_then_becomes_sent(server: SandboxServer, zoho: ZohoSandbox) -> None:
    list_key = zoho.add_mailing_list("Newsletter")
    with client_for(server, zoho) as client:
        key = create(client, list_key)
        assert client.schedule_campaign(key, zoho.now() + timedelta(hours=2)) == "scheduled"
        assert client.find_campaign("[mmw:abc]").status == "scheduled"
        with pytest.raises(CampaignsError, match="6605"):
            client.send_campaign(key)
        zoho.advance(3 * 3600)
        assert client.find_campaign("[mmw:abc]").status == "sent"
    assert len(zoho.sends) == 1 and zoho.sends[0]["scheduled_for"] is not None


def test_find_campaign_absent_and_undecidable(server: SandboxServer, zoho: ZohoSandbox) -> None:
    list_key = zoho.add_mailing_list("Newsletter")
    with client_for(server, zoho) as client:
        assert client.find_campaign("[mmw:zzz]") is None
        for n in range(3):
            create(client, list_key, name=f"other {n}")
        with pytest.raises(OutcomeUnknown):
            client.find_campaign("[mmw:zzz]", pages=1, count=2)


def test_request_errors(server: SandboxServer, zoho: ZohoSandbox) -> None:
    with client_for(server, zoho) as client:
        with pytest.raises(CampaignsError, match="2501"):
            create(client, "no-such-list")
        with pytest.raises(CampaignsError, match="6301"):
            client.send_campaign("no-such-campaign")
        with pytest.raises(PermanentFailure, match="1004"):
            client._call("GET", "nosuchapi", {}, write=False)


def test_expired_token_refreshes_once(server: SandboxServer, zoho: ZohoSandbox) -> None:
    list_key = zoho.add_mailing_list("Newsletter")
    provider = SandboxProvider(zoho)
    with CampaignsClient(server.url, auth=ZohoAuth(provider), timeout=5) as client:
        zoho.expire_access_tokens()
        create(client, list_key)
    assert provider.refreshes == 1 and len(zoho.campaigns) == 1


def test_memory_provider_works_with_campaigns(server: SandboxServer, zoho: ZohoSandbox) -> None:
    grants: list[str] = []

    def refresh() -> object:
        from worker.integrations.zoho import parse_token_response

        token = zoho.issue_access_token()
        grants.append(token)
        return parse_token_response(200, {"access_token": token}, datetime.now(UTC))

    provider = MemoryTokenProvider(refresh, lambda: datetime.now(UTC))
    zoho.add_mailing_list("Newsletter")
    with CampaignsClient(server.url, auth=ZohoAuth(provider), timeout=5) as client:
        client._call("GET", "getmailinglists", {}, write=False)
    assert len(grants) == 1


def test_timeout_after_the_send_is_outcome_unknown(zoho: ZohoSandbox) -> None:
    list_key = zoho.add_mailing_list("Newsletter")
    with zoho.server() as plain:
        key = create(client_for(plain, zoho), list_key)
    faults = Faults(after_effect_timeout=1.0, timeout_seconds=0.6)
    with (
        zoho.server(faults=faults) as slow,
        client_for(slow, zoho, timeout=0.2) as client,
        pytest.raises(OutcomeUnknown),
    ):
        client.send_campaign(key)
    assert zoho.sends_of(key) == 1


def test_api_lock_is_retry_later(server: SandboxServer, zoho: ZohoSandbox) -> None:
    zoho.campaigns_call_limit = 2
    zoho.add_mailing_list("Newsletter")
    with client_for(server, zoho) as client:
        for _ in range(2):
            client._call("GET", "getmailinglists", {}, write=False)
        with pytest.raises(RetryLater) as raised:
            client._call("GET", "getmailinglists", {}, write=False)
    assert raised.value.delay == 1800
