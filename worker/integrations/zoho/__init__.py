"""Zoho: OAuth tokens per data center, CRM records and Campaigns, mapped onto ``worker.errors``."""

from worker.integrations.zoho.auth import (
    MemoryTokenProvider,
    TokenProvider,
    ZohoAuth,
    is_token_rejected,
)
from worker.integrations.zoho.campaigns import (
    AlreadySent,
    CampaignsClient,
    CampaignsError,
    RemoteCampaign,
    parse_report,
    schedule_params,
)
from worker.integrations.zoho.crm import (
    DEFAULT_FIELDS,
    CrmClient,
    Cursor,
    PageTokenInvalid,
    RecordPage,
    next_cursor,
)
from worker.integrations.zoho.datacenters import DATA_CENTERS, DataCenter, data_center
from worker.integrations.zoho.oauth import (
    TokenGrant,
    is_token_fresh,
    parse_token_response,
    refresh_access_token,
)

__all__ = [
    "DATA_CENTERS",
    "DEFAULT_FIELDS",
    "AlreadySent",
    "CampaignsClient",
    "CampaignsError",
    "CrmClient",
    "Cursor",
    "DataCenter",
    "MemoryTokenProvider",
    "PageTokenInvalid",
    "RecordPage",
    "RemoteCampaign",
    "TokenGrant",
    "TokenProvider",
    "ZohoAuth",
    "data_center",
    "is_token_fresh",
    "is_token_rejected",
    "next_cursor",
    "parse_report",
    "parse_token_response",
    "refresh_access_token",
    "schedule_params",
]
