"""Zoho on loopback: Accounts (token grant), CRM records (v2-v8) and Campaigns (v1.1).

One :class:`ZohoSandbox` holds the state (clients, refresh/access tokens, CRM modules, mailing
lists, campaigns, every send) and builds three routers for one
:class:`~worker.sandbox.server.SandboxServer`, so one URL serves as accounts server, API domain
and Campaigns server. Shapes follow ``api-contracts.md`` sections 1-3, including Zoho's habit of
errors inside HTTP 200 bodies. Unconfirmed shapes (credit exhaustion, the Campaigns API lock,
Campaigns' answer to a bad token) are attributes a test may change.
"""

from __future__ import annotations

import itertools
import json
import secrets
import threading
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from worker.clock import Clock
from worker.sandbox.server import Faults, Request, Response, Router, SandboxServer

__all__ = ["ZohoSandbox", "start_zoho_sandbox"]

MODULES = ("Contacts", "Leads", "Deals", "Accounts", "Campaigns")
_SORTABLE = ("id", "Created_Time", "Modified_Time")
_THROTTLE_BODY = {
    "error": "Access Denied",
    "error_description": "You have made too many requests continuously. "
    "Please try again after some time.",
    "status": "failure",
}
_ID_BASE = 4150868000000000000


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def _crm_error(
    status: int, code: str, message: str, details: dict[str, Any] | None = None
) -> Response:
    body = {"code": code, "details": details or {}, "message": message, "status": "error"}
    return Response.json(body, status)


def _campaigns_error(code: str, message: str) -> Response:
    return Response.json({"status": "error", "code": code, "message": message})


@dataclass
class _RefreshToken:
    user_id: str
    revoked: bool = False
    grants: deque[datetime] = field(default_factory=deque)


@dataclass
class _Record:
    id: str
    data: dict[str, Any]
    created: datetime
    modified: datetime

    def render(self, fields: list[str] | None) -> dict[str, Any]:
        full = {
            "id": self.id,
            **self.data,
            "Created_Time": _iso(self.created),
            "Modified_Time": _iso(self.modified),
        }
        if fields is None:
            return full
        return {"id": self.id, **{name: full.get(name) for name in fields}}


@dataclass
class _Campaign:
    key: str
    name: str
    subject: str
    from_email: str
    list_key: str
    content_url: str
    created: datetime
    status: str = "draft"
    scheduled_for: datetime | None = None
    sent: datetime | None = None


class ZohoSandbox:
    """State and routers of the Zoho emulator. All methods are thread-safe."""

    def __init__(
        self,
        *,
        client_id: str = "1000.SANDBOX",
        client_secret: str = "sandbox-secret",
        api_domain: str | None = None,
        token_lifetime: int = 3600,
        throttle_limit: int = 10,
        throttle_window: float = 600.0,
        credits: int | None = None,
        page_token_lifetime: float = 86400.0,
        campaigns_call_limit: int = 500,
        clock: Clock,
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.api_domain = api_domain
        self.token_lifetime = token_lifetime
        self.throttle_limit = throttle_limit
        self.throttle_window = timedelta(seconds=throttle_window)
        self.credits = credits
        self.page_token_lifetime = timedelta(seconds=page_token_lifetime)
        self.campaigns_call_limit = campaigns_call_limit
        self.credits_exhausted_status = 429
        self.campaigns_bad_token = {"status": "error", "code": "1007", "message": "Unauthorized"}
        self._clock = clock
        self._offset = timedelta()
        self._lock = threading.RLock()
        self._ids = itertools.count(1)
        self.refresh_tokens: dict[str, _RefreshToken] = {}
        self.access_tokens: dict[str, datetime] = {}
        self.grants: list[tuple[str, datetime]] = []
        self.records: dict[str, dict[str, _Record]] = {module: {} for module in MODULES}
        self.records_served: dict[str, int] = dict.fromkeys(MODULES, 0)
        self._page_tokens: dict[str, tuple[str, int, datetime]] = {}
        self.mailing_lists: dict[str, dict[str, Any]] = {}
        self.campaigns: dict[str, _Campaign] = {}
        self.sends: list[dict[str, Any]] = []
        self._report_overrides: dict[str, dict[str, str]] = {}
        self.hold_after_send: threading.Event | None = None
        """When set, a send is recorded and its answer withheld until the event is set (a
        crash test kills the client in that window: Zoho accepted, the worker never heard)."""
        self._campaign_calls: dict[str, deque[datetime]] = {}

    # --- clock ---------------------------------------------------------------------------------
    def now(self) -> datetime:
        """The sandbox's time, in whole seconds like Zoho's timestamps."""
        return (self._clock() + self._offset).replace(microsecond=0)

    def advance(self, seconds: float) -> None:
        """Move the sandbox's clock forward (token expiry, throttle windows)."""
        with self._lock:
            self._offset += timedelta(seconds=seconds)

    # --- accounts ------------------------------------------------------------------------------
    def add_refresh_token(self, user_id: str) -> str:
        """A new refresh token for ``user_id`` (what the OAuth consent would have produced)."""
        token = f"1000.{secrets.token_hex(16)}.{secrets.token_hex(16)}"
        with self._lock:
            self.refresh_tokens[token] = _RefreshToken(user_id)
        return token

    def revoke(self, refresh_token: str) -> None:
        with self._lock:
            self.refresh_tokens[refresh_token].revoked = True

    def issue_access_token(self, *, lifetime: int | None = None) -> str:
        """An access token valid for ``lifetime`` seconds, without a grant (test setup)."""
        token = f"1000.{secrets.token_hex(16)}.{secrets.token_hex(16)}"
        with self._lock:
            self.access_tokens[token] = self.now() + timedelta(
                seconds=self.token_lifetime if lifetime is None else lifetime
            )
        return token

    def expire_access_tokens(self) -> None:
        with self._lock:
            past = self.now() - timedelta(seconds=1)
            for token in self.access_tokens:
                self.access_tokens[token] = past

    def grants_for(self, refresh_token: str) -> int:
        with self._lock:
            return sum(1 for token, _ in self.grants if token == refresh_token)

    def _token_grant(self, request: Request) -> Response:
        form = request.form()
        if form.get("grant_type") != "refresh_token":
            return Response.json({"error": "unsupported_grant_type"})
        if form.get("client_id") != self.client_id:
            return Response.json({"error": "invalid_client"})
        if form.get("client_secret") != self.client_secret:
            return Response.json({"error": "invalid_client_secret"})
        with self._lock:
            state = self.refresh_tokens.get(form.get("refresh_token", ""))
            if state is None or state.revoked:
                return Response.json({"error": "invalid_code"})
            now = self.now()
            while state.grants and state.grants[0] <= now - self.throttle_window:
                state.grants.popleft()
            if len(state.grants) >= self.throttle_limit:
                return Response.json(_THROTTLE_BODY, 400)
            state.grants.append(now)
            token = f"1000.{secrets.token_hex(16)}.{secrets.token_hex(16)}"
            self.access_tokens[token] = now + timedelta(seconds=self.token_lifetime)
            self.grants.append((form["refresh_token"], now))
        host = request.headers.get("host", "127.0.0.1")
        return Response.json(
            {
                "access_token": token,
                "scope": "ZohoCRM.modules.ALL ZohoCampaigns.campaign.ALL",
                "api_domain": self.api_domain or f"http://{host}",
                "token_type": "Bearer",
                "expires_in": self.token_lifetime,
            }
        )

    def _revoke(self, request: Request) -> Response:
        with self._lock:
            state = self.refresh_tokens.get(request.form().get("token", ""))
            if state is not None:
                state.revoked = True
        return Response.json({"status": "success"})

    def _token_valid(self, request: Request) -> bool:
        value = request.headers.get("authorization", "")
        if not value.startswith("Zoho-oauthtoken "):
            return False
        with self._lock:
            expires = self.access_tokens.get(value[len("Zoho-oauthtoken ") :])
            return expires is not None and self.now() < expires

    def settings_overrides(self, url: str) -> dict[str, str]:
        """Settings fields that point the worker at this sandbox served at ``url``."""
        return {
            "zoho_accounts_url": url,
            "zoho_api_domain": url,  # a loopback api_domain is never taken from a token
            "zoho_campaigns_url": url,
            "zoho_client_id": self.client_id,
            "zoho_client_secret": self.client_secret,
        }

    def connection_document(self, user_id: str, *, data_center: str = "com") -> dict[str, Any]:
        """A ``zoho_tokens`` document as the app stores it after consent (access token stale)."""
        now = self.now()
        return {
            "user_id": user_id,
            "access_token": None,
            "refresh_token": self.add_refresh_token(user_id),
            "token_type": "Bearer",
            "expires_in": 0,
            "expires_at": now,
            "scope": "ZohoCRM.modules.ALL ZohoCampaigns.campaign.ALL",
            "data_center": data_center,
            "created_at": now,
            "updated_at": now,
        }

    # --- CRM -----------------------------------------------------------------------------------
    def seed(self, module: str, count: int, *, modified: datetime | None = None) -> list[str]:
        """Add ``count`` records to ``module`` (modified at ``modified``, default a day ago)."""
        moment = modified or self.now() - timedelta(days=1)
        ids = []
        with self._lock:
            table = self.records[module]
            for _ in range(count):
                n = next(self._ids)
                record_id = str(_ID_BASE + n)
                table[record_id] = _Record(record_id, _sample(module, n), moment, moment)
                ids.append(record_id)
        return ids

    def modify(self, module: str, record_ids: list[str]) -> None:
        """Change records now (their ``Modified_Time`` moves to the sandbox clock)."""
        with self._lock:
            now = self.now()
            for record_id in record_ids:
                record = self.records[module][record_id]
                record.data = {**record.data, "Description": f"changed at {_iso(now)}"}
                record.modified = now

    def _spend_credit(self) -> Response | None:
        with self._lock:
            if self.credits is None:
                return None
            if self.credits <= 0:
                return _crm_error(
                    self.credits_exhausted_status,
                    "LIMIT_REACHED",
                    "API calls limit reached for the last 24 hours",
                )
            self.credits -= 1
            return None

    def _list_records(self, request: Request) -> Response:
        if not self._token_valid(request):
            return _crm_error(401, "INVALID_TOKEN", "invalid oauth token")
        refused = self._spend_credit()
        if refused is not None:
            return refused
        version, module = request.params["version"], request.params["module"]
        if module not in self.records:
            return _crm_error(400, "INVALID_MODULE", "the module name given seems to be invalid")
        q = request.query
        fields = [f for f in q.get("fields", "").split(",") if f] or None
        if fields is None and version not in ("v2", "v2.1"):
            return _crm_error(
                400, "REQUIRED_PARAM_MISSING", "One of the expected parameter is missing",
                {"param_name": "fields"},
            )  # fmt: skip
        if fields is not None and len(fields) > 50:
            return _crm_error(400, "LIMIT_EXCEEDED", "fields limit exceeded", {"limit": 50})
        try:
            per_page = int(q.get("per_page", 200))
            page = int(q.get("page", 1))
        except ValueError:
            return _crm_error(400, "INVALID_DATA", "invalid data", {"param_name": "per_page"})
        if not 1 <= per_page <= 200 or page < 1:
            return _crm_error(400, "INVALID_DATA", "invalid data", {"param_name": "per_page"})
        sort_by, sort_order = q.get("sort_by", "id"), q.get("sort_order", "desc")
        if sort_by not in _SORTABLE:
            return _crm_error(
                400, "INVALID_DATA", "invalid data", {"supported_values": list(_SORTABLE)}
            )
        since: datetime | None = None
        if request.headers.get("if-modified-since"):
            try:
                since = datetime.fromisoformat(request.headers["if-modified-since"])
            except ValueError:
                return _crm_error(400, "INVALID_DATA", "invalid If-Modified-Since")
        binding = json.dumps([module, q.get("fields"), per_page, sort_by, sort_order, str(since)])
        now = self.now()
        with self._lock:
            if "page_token" in q:
                held = self._page_tokens.get(q["page_token"])
                if held is None or held[2] <= now:
                    return _crm_error(400, "EXPIRED_VALUE", "the page token has expired")
                if held[0] != binding:
                    return _crm_error(
                        400, "TOKEN_BOUND_DATA_MISMATCH", "params differ from the page token"
                    )
                offset = held[1]
            else:
                offset = (page - 1) * per_page
                if page * per_page > 2000:
                    return _crm_error(
                        400, "DISCRETE_PAGINATION_LIMIT_EXCEEDED",
                        "Records beyond 2000 need page_token", {"limit": 2000},
                    )  # fmt: skip
            if offset + per_page > 100_000:
                return _crm_error(400, "PAGINATION_LIMIT_EXCEEDED", "beyond 100000 records")
            rows = [r for r in self.records[module].values() if since is None or r.modified > since]
            key = {
                "id": lambda r: int(r.id),
                "Created_Time": lambda r: (r.created, int(r.id)),
                "Modified_Time": lambda r: (r.modified, int(r.id)),
            }[sort_by]
            rows.sort(key=key, reverse=sort_order == "desc")
            chunk = rows[offset : offset + per_page]
            more = offset + per_page < len(rows)
            next_token = None
            if more:
                next_token = secrets.token_hex(8)
                self._page_tokens[next_token] = (
                    binding, offset + per_page, now + self.page_token_lifetime
                )  # fmt: skip
            self.records_served[module] += len(chunk)
            data = [row.render(fields) for row in chunk]
        if not data:
            return Response(status=204, body=b"")
        info: dict[str, Any] = {
            "per_page": per_page, "count": len(data), "page": offset // per_page + 1,
            "more_records": more,
        }  # fmt: skip
        if version not in ("v2", "v2.1"):
            info.update(
                sort_by=sort_by, sort_order=sort_order, next_page_token=next_token,
                previous_page_token=None,
                page_token_expiry=_iso(now + self.page_token_lifetime) if next_token else None,
                call=False, email=False,
            )  # fmt: skip
        return Response.json({"data": data, "info": info})

    # --- Campaigns -----------------------------------------------------------------------------
    def add_mailing_list(self, name: str, contacts: int = 100) -> str:
        key = secrets.token_hex(12)
        with self._lock:
            self.mailing_lists[key] = {"listname": name, "noofcontacts": contacts}
        return key

    def set_report(self, key: str, **counts: str) -> None:
        """Override report figures (strings, as Zoho sends them) of campaign ``key``."""
        with self._lock:
            self._report_overrides.setdefault(key, {}).update(counts)

    def sends_of(self, key: str) -> int:
        with self._lock:
            return sum(1 for send in self.sends if send["campaign_key"] == key)

    def _campaign_guard(self, request: Request) -> Response | None:
        """Token check and the per-API throttle (500 calls / 5 min locks that API 30 min)."""
        if not self._token_valid(request):
            return Response.json(self.campaigns_bad_token)
        api = request.params.get("api", request.path.rsplit("/", 1)[-1])
        now = self.now()
        with self._lock:
            calls = self._campaign_calls.setdefault(api, deque())
            while calls and calls[0] <= now - timedelta(minutes=5):
                calls.popleft()
            if len(calls) >= self.campaigns_call_limit:
                return Response.json(
                    {"status": "error", "code": "429", "message": "API call limit exceeded"}, 429
                )
            calls.append(now)
        return None

    def _refresh_schedules(self) -> None:
        now = self.now()
        for campaign in self.campaigns.values():
            if campaign.status == "scheduled" and campaign.scheduled_for <= now:
                campaign.status, campaign.sent = "sent", campaign.scheduled_for

    def _mailing_lists(self, request: Request) -> Response:
        refused = self._campaign_guard(request)
        if refused:
            return refused
        with self._lock:
            lists = [
                {"listkey": key, "listname": item["listname"],
                 "noofcontacts": str(item["noofcontacts"]), "lockstatus": "unlocked"}
                for key, item in self.mailing_lists.items()
            ]  # fmt: skip
        if not lists:
            return _campaigns_error("2401", "No mailing list found")
        return Response.json({"status": "success", "code": 0, "list_of_details": lists})

    def _create_campaign(self, request: Request) -> Response:
        refused = self._campaign_guard(request)
        if refused:
            return refused
        form = request.form()
        required = ("campaignname", "from_email", "subject", "list_details", "content_url")
        if any(not form.get(name) for name in required):
            return _campaigns_error("1003", "Mandatory parameters missing")
        try:
            lists = json.loads(form["list_details"])
        except ValueError:
            return _campaigns_error("1005", "list_details is not valid JSON")
        if not content_url_ok(form["content_url"]):
            return _campaigns_error("1004", "Invalid content URL")
        with self._lock:
            if not lists or any(key not in self.mailing_lists for key in lists):
                return _campaigns_error("2501", "Invalid list key")
            key = secrets.token_hex(16)
            self.campaigns[key] = _Campaign(
                key=key, name=form["campaignname"], subject=form["subject"],
                from_email=form["from_email"], list_key=next(iter(lists)),
                content_url=form["content_url"], created=self.now(),
            )  # fmt: skip
        return Response.json(
            {"message": "Campaign created successfully", "campaignKey": key, "code": "200",
             "uri": "/api/v1.1/createCampaign", "status": "success"}
        )  # fmt: skip

    def _send_campaign(self, request: Request) -> Response:
        refused = self._campaign_guard(request)
        if refused:
            return refused
        form = request.form()
        if not form.get("campaignkey"):
            return _campaigns_error("1003", "Mandatory parameter campaignkey missing")
        schedule = form.get("isschedule") == "true"
        when: datetime | None = None
        if schedule:
            try:
                day = datetime.strptime(form["scheduledate"], "%m/%d/%Y")
                hour = int(form["schedulehour"]) % 12 + (12 if form["am_pm"] == "PM" else 0)
                minute = int(form["scheduleminute"])
            except (KeyError, ValueError):
                return _campaigns_error("1005", "Invalid schedule parameters")
            if minute % 5 or not 1 <= int(form["schedulehour"]) <= 12:
                return _campaigns_error("1005", "Invalid schedule parameters")
            when = day.replace(hour=hour, minute=minute, tzinfo=UTC)
        with self._lock:
            self._refresh_schedules()
            campaign = self.campaigns.get(form["campaignkey"])
            if campaign is None:
                return _campaigns_error("6301", "Invalid campaign key")
            if campaign.status == "sent":
                return _campaigns_error("6600", "Campaign already sent")
            if campaign.status != "draft":
                return _campaigns_error("6605", "Campaign status changed")
            now = self.now()
            if when is not None:
                campaign.status, campaign.scheduled_for = "scheduled", when
            else:
                campaign.status, campaign.sent = "sent", now
            self.sends.append(
                {"campaign_key": campaign.key, "at": now, "scheduled_for": when,
                 "recipients": self.mailing_lists[campaign.list_key]["noofcontacts"]}
            )  # fmt: skip
        if self.hold_after_send is not None:
            self.hold_after_send.wait(timeout=30)
        status = "scheduled" if when else "inprogress"
        return Response.json(
            {"response": {"uri": "/api/v1.1/sendcampaign", "code": "200", "version": "1.1",
                          "message": "", "campaign_status": status}}
        )  # fmt: skip

    def _recent_campaigns(self, request: Request) -> Response:
        refused = self._campaign_guard(request)
        if refused:
            return refused
        form = request.form()
        start = max(int(form.get("fromindex", 1)), 1) - 1
        count = int(form.get("range", 20))
        with self._lock:
            self._refresh_schedules()
            ordered = sorted(self.campaigns.values(), key=lambda c: c.created, reverse=True)
            items = [
                {"campaign_key": c.key, "campaign_name": c.name, "campaign_status": c.status,
                 "created_time": _iso(c.created), "sent_time": _iso(c.sent) if c.sent else None,
                 "subject": c.subject, "from_email": c.from_email}
                for c in ordered[start : start + count]
            ]  # fmt: skip
        return Response.json({"status": "success", "code": 0, "recent_campaigns": items})

    def _report(self, request: Request) -> Response:
        refused = self._campaign_guard(request)
        if refused:
            return refused
        key = request.form().get("campaignkey", "")
        with self._lock:
            self._refresh_schedules()
            campaign = self.campaigns.get(key)
            if campaign is None:
                return _campaigns_error("6301", "Invalid campaign key")
            if campaign.status != "sent":
                return _campaigns_error("3001", "No sent campaign found")
            sent = int(self.mailing_lists[campaign.list_key]["noofcontacts"])
            report = _default_report(sent, campaign.name)
            report.update(self._report_overrides.get(key, {}))
        return Response.json(
            {"status": "success", "code": 0, "campaign-reports": [report],
             "campaign-details": {"campaign_name": campaign.name, "subject": campaign.subject}}
        )  # fmt: skip

    def _wrong_url(self, request: Request) -> Response:
        return _campaigns_error("1004", "Wrong URL entered")

    # --- wiring --------------------------------------------------------------------------------
    def routers(self) -> list[Router]:
        accounts = Router()
        accounts.route("POST", "/oauth/v2/token")(self._token_grant)
        accounts.route("POST", "/oauth/v2/token/revoke")(self._revoke)
        crm = Router()
        crm.route("GET", "/crm/{version}/{module}")(self._list_records)
        campaigns = Router("/api/v1.1")
        for method in ("GET", "POST"):
            campaigns.route(method, "/getmailinglists")(self._mailing_lists)
            campaigns.route(method, "/recentcampaigns")(self._recent_campaigns)
            campaigns.route(method, "/campaignreports")(self._report)
        campaigns.route("POST", "/createCampaign")(self._create_campaign)
        campaigns.route("POST", "/sendcampaign")(self._send_campaign)
        for method in ("GET", "POST"):
            campaigns.route(method, "/{api}")(self._wrong_url)
        return [accounts, crm, campaigns]

    def on_rate_limit(self, request: Request) -> Response:
        """Injected throttling, shaped per product."""
        if request.path.startswith("/oauth"):
            return Response.json(_THROTTLE_BODY, 400)
        if request.path.startswith("/api/"):
            return Response.json(
                {"status": "error", "code": "429", "message": "API call limit exceeded"}, 429
            )
        return _crm_error(429, "TOO_MANY_REQUESTS", "Rate limit exceeded", {"retry_after": 1})

    def on_server_error(self, request: Request) -> Response:
        if request.path.startswith("/crm"):
            return _crm_error(500, "INTERNAL_ERROR", "Internal Server Error")
        return Response.json({"status": "error", "code": "500", "message": "Internal error"}, 500)

    def server(self, *, faults: Faults | None = None, port: int = 0) -> SandboxServer:
        """A (not yet started) server for this state."""
        return SandboxServer(
            *self.routers(),
            faults=faults,
            on_rate_limit=self.on_rate_limit,
            on_server_error=self.on_server_error,
            port=port,
        )


def content_url_ok(url: str) -> bool:
    """Zoho fetches the campaign HTML from ``content_url``: it must be an http(s) URL."""
    return url.startswith(("http://", "https://"))


def _sample(module: str, n: int) -> dict[str, Any]:
    owner = {"name": "Sandbox Owner", "id": str(_ID_BASE), "email": "owner@example.com"}
    common = {"Owner": owner, "Description": None}
    if module in ("Contacts", "Leads"):
        return {
            **common, "First_Name": f"First{n}", "Last_Name": f"Last{n}",
            "Email": f"person{n}@example.com", "Phone": f"+1555{n:07d}",
            "Company": f"Company {n % 97}", "Account_Name": {"name": f"Company {n % 97}"},
            "Lead_Source": "Web", "Lead_Status": "Contacted",
        }  # fmt: skip
    if module == "Deals":
        return {
            **common, "Deal_Name": f"Deal {n}", "Amount": float(n % 1000) * 10,
            "Stage": "Qualification", "Closing_Date": "2026-12-31",
            "Account_Name": {"name": f"Company {n % 97}"}, "Contact_Name": None,
        }  # fmt: skip
    if module == "Accounts":
        return {
            **common, "Account_Name": f"Company {n}", "Website": f"https://c{n}.example.com",
            "Industry": "Software", "Phone": f"+1666{n:07d}",
        }  # fmt: skip
    return {
        **common, "Campaign_Name": f"Campaign {n}", "Type": "Email", "Status": "Active",
        "Start_Date": "2026-01-01", "End_Date": "2026-12-31", "Budgeted_Cost": 1000.0,
    }  # fmt: skip


def _default_report(sent: int, name: str) -> dict[str, str]:
    delivered, opened = sent * 95 // 100, sent * 40 // 100
    clicked, bounced, unsub = sent * 10 // 100, sent - sent * 95 // 100, sent // 100

    def pct(part: int) -> str:
        return f"{(100.0 * part / sent) if sent else 0.0:.2f}"

    return {
        "campaign_name": name, "emails_sent_count": str(sent),
        "delivered_count": str(delivered), "delivered_percent": pct(delivered),
        "opens_count": str(opened), "open_percent": pct(opened),
        "unique_clicks_count": str(clicked), "unique_clicked_percent": pct(clicked),
        "bounces_count": str(bounced), "bounce_percent": pct(bounced),
        "unsub_count": str(unsub), "unsubscribe_percent": pct(unsub),
        "spams_count": "0", "spam_percent": "0.00",
    }  # fmt: skip


def start_zoho_sandbox(
    *,
    port: int = 0,
    contacts: int = 0,
    deals: int = 0,
    faults: Faults | None = None,
    **options: Any,
) -> tuple[SandboxServer, ZohoSandbox]:
    """A started Zoho sandbox seeded with ``contacts``/``deals`` (for ``mmw dev`` and tests)."""
    state = ZohoSandbox(**options)
    if contacts:
        state.seed("Contacts", contacts)
    if deals:
        state.seed("Deals", deals)
    server = state.server(faults=faults, port=port).start()
    return server, state
