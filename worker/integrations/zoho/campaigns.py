"""Zoho Campaigns API v1.1: create a campaign for a mailing list, send or schedule it, read reports.

Campaigns answers HTTP 200 even for errors; ``status``/``code`` in the body decide (keys vary in
case and some answers are wrapped in ``response``), see :func:`campaigns_payload`. Writes that
time out after the request left may have taken effect: they raise :class:`OutcomeUnknown`, and
the caller reconciles through :meth:`CampaignsClient.find_campaign` (campaign names carry the
run's marker) instead of sending again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx2

from worker.errors import JobError, OutcomeUnknown, PermanentFailure, RetryLater, TokenExpired

__all__ = [
    "LOCK_DELAY_SECONDS",
    "AlreadySent",
    "CampaignsClient",
    "CampaignsError",
    "RemoteCampaign",
    "campaigns_payload",
    "parse_report",
    "schedule_params",
]

LOCK_DELAY_SECONDS = 1800.0
"""Over 500 calls in 5 minutes lock one API for 30 minutes."""

_OK_CODES = {"0", "200"}
_TRANSIENT_CODES = {"2402", "2502", "6001"}
_TOKEN_CODES = {"1007"}
_ALREADY_SENT = "6600"


class CampaignsError(PermanentFailure):
    """A Zoho Campaigns error code that retrying cannot fix; ``code`` is Zoho's."""

    def __init__(self, message: str, *, code: str) -> None:
        super().__init__(message)
        self.code = code


class AlreadySent(CampaignsError):
    """Code 6600: the campaign was sent before (by us, in an earlier attempt)."""


@dataclass(frozen=True)
class RemoteCampaign:
    """A campaign as listed by ``recentcampaigns``."""

    key: str
    name: str
    status: str
    sent_time: str | None


def _code(body: dict[str, Any]) -> str | None:
    for holder in (body, body.get("response") if isinstance(body.get("response"), dict) else {}):
        for key in ("code", "Code"):
            if key in holder and holder[key] is not None:
                return str(holder[key])
    return None


def campaigns_payload(status: int, body: Any) -> dict[str, Any]:
    """The payload of a successful answer, or the mapped error raised."""
    if status == 429:
        raise RetryLater("Zoho Campaigns API locked (too many calls)", delay=LOCK_DELAY_SECONDS)
    if status >= 500:
        raise RetryLater(f"Zoho Campaigns server error (HTTP {status})")
    if not isinstance(body, dict):
        raise RetryLater(f"Zoho Campaigns sent an unreadable answer (HTTP {status})")
    payload = body["response"] if isinstance(body.get("response"), dict) else body
    state = str(payload.get("status", body.get("status", ""))).lower()
    code = _code(body)
    if state != "error" and (code is None or code in _OK_CODES) and status < 400:
        return payload
    code = code or str(status)
    message = str(payload.get("message", ""))[:200]
    label = f"Zoho Campaigns error {code}" + (f": {message}" if message else "")
    if code in _TRANSIENT_CODES:
        raise RetryLater(label)
    if code in _TOKEN_CODES or status == 401:
        raise TokenExpired(label)
    if code == _ALREADY_SENT:
        raise AlreadySent(label, code=code)
    raise CampaignsError(label, code=code)


def schedule_params(send_at: datetime) -> dict[str, str]:
    """``sendcampaign?isschedule=true`` fields for ``send_at`` in UTC (minutes step by 5, up)."""
    moment = send_at.astimezone(UTC).replace(second=0, microsecond=0)
    if send_at.astimezone(UTC) > moment or moment.minute % 5:
        moment += timedelta(minutes=(5 - moment.minute % 5) or 5)
    hour = moment.hour % 12 or 12
    return {
        "isschedule": "true",
        "scheduledate": moment.strftime("%m/%d/%Y"),
        "schedulehour": str(hour),
        "scheduleminute": f"{moment.minute:02d}",
        "am_pm": "AM" if moment.hour < 12 else "PM",
        "sendingTZ": "UTC",
        "istimewarp": "false",
    }


def _number(value: Any) -> float:
    try:
        return float(str(value).strip().rstrip("%") or 0)
    except ValueError:
        return 0.0


def parse_report(payload: dict[str, Any]) -> dict[str, float | int] | None:
    """``email_campaigns.analytics`` counters from a ``campaignreports`` answer (None: no report).

    Zoho sends every figure as a string; rates are kept as Zoho's percentages (0-100).
    """
    reports = payload.get("campaign-reports")
    if isinstance(reports, list):
        reports = reports[0] if reports else None
    if not isinstance(reports, dict):
        return None
    return {
        "sent": int(_number(reports.get("emails_sent_count"))),
        "delivered": int(_number(reports.get("delivered_count"))),
        "opened": int(_number(reports.get("opens_count"))),
        "clicked": int(_number(reports.get("unique_clicks_count"))),
        "bounced": int(_number(reports.get("bounces_count"))),
        "unsubscribed": int(_number(reports.get("unsub_count"))),
        "delivery_rate": _number(reports.get("delivered_percent")),
        "open_rate": _number(reports.get("open_percent")),
        "click_rate": _number(reports.get("unique_clicked_percent")),
        "bounce_rate": _number(reports.get("bounce_percent")),
        "unsubscribe_rate": _number(reports.get("unsubscribe_percent")),
    }


class CampaignsClient:
    """Zoho Campaigns of one user at ``base_url`` (``https://campaigns.zoho.<tld>``)."""

    def __init__(
        self,
        base_url: str,
        *,
        auth: httpx2.Auth,
        timeout: float = 20.0,
        transport: httpx2.BaseTransport | None = None,
    ) -> None:
        self._client = httpx2.Client(
            base_url=f"{base_url.rstrip('/')}/api/v1.1",
            auth=auth,
            timeout=timeout,
            # Connection failures happen before anything is sent: safe to retry even writes.
            transport=transport or httpx2.HTTPTransport(retries=2),
            trust_env=False,
        )

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> CampaignsClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: str, path: str, params: dict[str, str], *, write: bool) -> dict:
        fields = {"resfmt": "JSON", **params}
        try:
            if method == "GET":
                response = self._client.get(f"/{path}", params=fields)
            else:
                response = self._client.post(f"/{path}", data=fields)
        except httpx2.ConnectError:
            raise RetryLater("Zoho Campaigns unreachable") from None
        except httpx2.HTTPError as exc:
            error: JobError
            if write:
                error = OutcomeUnknown(f"Zoho Campaigns {path}: no answer ({type(exc).__name__})")
            else:
                error = RetryLater(f"Zoho Campaigns {path}: no answer ({type(exc).__name__})")
            raise error from None
        try:
            body: Any = response.json()
        except ValueError:
            body = None
        return campaigns_payload(response.status_code, body)

    def create_campaign(
        self,
        *,
        name: str,
        subject: str,
        from_email: str,
        list_key: str,
        content_url: str,
        from_name: str | None = None,
        topic_id: str | None = None,
    ) -> str:
        """Create a draft campaign for the mailing list ``list_key``; returns its campaign key."""
        params = {
            "campaignname": name,
            "subject": subject,
            "from_email": from_email,
            "list_details": json.dumps({list_key: []}),
            "content_url": content_url,
        }
        if from_name:
            params["from_name"] = from_name
        if topic_id:
            params["topicId"] = topic_id
        payload = self._call("POST", "createCampaign", params, write=True)
        key = payload.get("campaignKey") or payload.get("campaign_key")
        if not key:
            raise OutcomeUnknown("Zoho Campaigns createCampaign answered without a campaign key")
        return str(key)

    def send_campaign(self, key: str) -> str:
        """Send now; returns Zoho's ``campaign_status`` (``inprogress``)."""
        payload = self._call("POST", "sendcampaign", {"campaignkey": key}, write=True)
        return str(payload.get("campaign_status", "inprogress"))

    def schedule_campaign(self, key: str, send_at: datetime) -> str:
        """Schedule for ``send_at``; returns Zoho's ``campaign_status`` (``scheduled``)."""
        params = {"campaignkey": key, **schedule_params(send_at)}
        payload = self._call("POST", "sendcampaign", params, write=True)
        return str(payload.get("campaign_status", "scheduled"))

    def recent_campaigns(self, *, from_index: int = 1, count: int = 100) -> list[RemoteCampaign]:
        """One page of the account's campaigns, newest first."""
        payload = self._call(
            "GET",
            "recentcampaigns",
            {"fromindex": str(from_index), "range": str(count), "sort": "desc", "status": "all"},
            write=False,
        )
        return [
            RemoteCampaign(
                key=str(item.get("campaign_key", "")),
                name=str(item.get("campaign_name", "")),
                status=str(item.get("campaign_status", "")).lower(),
                sent_time=item.get("sent_time"),
            )
            for item in payload.get("recent_campaigns") or []
        ]

    def find_campaign(
        self, marker: str, *, pages: int = 5, count: int = 100
    ) -> RemoteCampaign | None:
        """The newest campaign whose name contains ``marker``; None only if none exists.

        Searching stops after ``pages`` pages: a longer listing without the marker is
        undecidable, so :class:`OutcomeUnknown` rather than a guess that it was never created.
        """
        for page in range(pages):
            batch = self.recent_campaigns(from_index=page * count + 1, count=count)
            for campaign in batch:
                if marker in campaign.name:
                    return campaign
            if len(batch) < count:
                return None
        raise OutcomeUnknown(f"campaign marker not among the newest {pages * count} campaigns")

    def campaign_report(self, key: str) -> dict[str, float | int] | None:
        """Analytics of a sent campaign; None when Zoho has no report yet (code 3001/6002)."""
        try:
            payload = self._call("GET", "campaignreports", {"campaignkey": key}, write=False)
        except CampaignsError as exc:
            if exc.code in {"3001", "6002"}:
                return None
            raise
        return parse_report(payload)
