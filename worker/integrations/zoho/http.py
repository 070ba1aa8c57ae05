"""The HTTP client every Zoho API client shares: auth flow, timeout, connect retries, no proxies."""

from __future__ import annotations

from typing import Self

import httpx2

__all__ = ["ZohoHttpClient"]


class ZohoHttpClient:
    """Owns one ``httpx2.Client`` for ``base_url``; a context manager that closes it."""

    def __init__(
        self,
        base_url: str,
        *,
        auth: httpx2.Auth,
        timeout: float,
        transport: httpx2.BaseTransport | None,
    ) -> None:
        self._client = httpx2.Client(
            base_url=base_url,
            auth=auth,
            timeout=timeout,
            # Connection failures happen before anything is sent: safe to retry even writes.
            transport=transport or httpx2.HTTPTransport(retries=2),
            trust_env=False,
        )

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
