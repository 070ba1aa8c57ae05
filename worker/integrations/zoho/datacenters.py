"""Which Zoho servers serve a user, from the data center recorded in ``zoho_tokens.data_center``.

Tokens of one data center are rejected by the others, so every call must go to the servers of the
user's own data center. The accounts server of Canada is ``zohocloud.ca``, not ``zoho.ca``.

The ``api_domain`` a grant names is stored with the token and used for CRM calls, so a tampered
token document could send the user's token anywhere: :func:`checked_api_domain` accepts only the
data center's documented API domains (``www``, ``sandbox`` and ``developer`` ``.zohoapis.<tld>``,
https, no port or path). Anything else (a sandbox on loopback in dev and tests) is reached only
through the explicit ``MMW_ZOHO_API_DOMAIN`` setting.
"""

from __future__ import annotations

from dataclasses import dataclass

from worker.errors import PermanentFailure

__all__ = ["DATA_CENTERS", "DataCenter", "checked_api_domain", "data_center"]


@dataclass(frozen=True)
class DataCenter:
    """The three base URLs of one Zoho data center."""

    key: str
    accounts_url: str
    api_domain: str
    campaigns_url: str
    #: Every API domain Zoho documents for this data center (production, sandbox, developer).
    api_domains: tuple[str, ...] = ()


def _dc(key: str, accounts: str, tld: str) -> DataCenter:
    return DataCenter(
        key=key,
        accounts_url=accounts,
        api_domain=f"https://www.zohoapis.{tld}",
        campaigns_url=f"https://campaigns.zoho.{tld}",
        api_domains=tuple(
            f"https://{env}.zohoapis.{tld}" for env in ("www", "sandbox", "developer")
        ),
    )


DATA_CENTERS: dict[str, DataCenter] = {
    dc.key: dc
    for dc in (
        _dc("com", "https://accounts.zoho.com", "com"),
        _dc("eu", "https://accounts.zoho.eu", "eu"),
        _dc("in", "https://accounts.zoho.in", "in"),
        _dc("com.au", "https://accounts.zoho.com.au", "com.au"),
        _dc("jp", "https://accounts.zoho.jp", "jp"),
        _dc("ca", "https://accounts.zohocloud.ca", "ca"),
        _dc("sa", "https://accounts.zoho.sa", "sa"),
        _dc("com.cn", "https://accounts.zoho.com.cn", "com.cn"),
        _dc("uk", "https://accounts.zoho.uk", "uk"),
    )
}

# Names seen in ``location=`` of the OAuth redirect and in older documents.
_ALIASES = {"us": "com", "au": "com.au", "cn": "com.cn", "": "com"}


def data_center(key: str | None) -> DataCenter:
    """The data center of a stored key (``com``, ``eu``, ``us``…); unknown keys are permanent."""
    normalized = (key or "").strip().lower().lstrip(".")
    normalized = _ALIASES.get(normalized, normalized)
    try:
        return DATA_CENTERS[normalized]
    except KeyError:
        raise PermanentFailure(f"unknown Zoho data center {key!r}") from None


def checked_api_domain(dc: DataCenter, api_domain: str | None) -> str:
    """``api_domain`` (without a trailing slash) if it is one of ``dc``'s API domains, the data
    center's default when none is stored; a permanent failure for anything else (pure)."""
    if api_domain is None or api_domain == "":
        return dc.api_domain
    normalized = api_domain.rstrip("/").lower() if isinstance(api_domain, str) else None
    if normalized not in dc.api_domains:
        raise PermanentFailure(
            f"stored Zoho api_domain {str(api_domain)[:100]!r} is not an API domain of data "
            f"center {dc.key!r} ({', '.join(dc.api_domains)}): refusing to send the token there"
        )
    return normalized
