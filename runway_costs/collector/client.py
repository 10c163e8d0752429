"""Async HTTP client for one Runway organization: the only code that speaks to the API.

It owns the headers, retries (``collector.retry``), error mapping (``collector.errors``) and
parsing (``collector.wire``), and counts every HTTP attempt in ``stats`` so a collection run
can record what it cost. The API key stays a ``SecretStr`` until the header is built, and is
redacted from any text that could reach an error message or a log.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from types import TracebackType
from typing import TypeVar

import httpx
from pydantic import SecretStr

from runway_costs import __version__
from runway_costs.collector.errors import (
    ApiError,
    AuthError,
    BadRequestError,
    ErrorContext,
    ResponseFormatError,
    RetryExhaustedError,
)
from runway_costs.collector.models import CallStats, OrgSnapshot, UsageWindow
from runway_costs.collector.retry import (
    describe_exception,
    is_retryable_exception,
    is_retryable_status,
    parse_retry_after,
    retry_wait,
)
from runway_costs.collector.wire import FormatProblem, parse_organization, parse_usage
from runway_costs.core.clock import Clock
from runway_costs.core.config import CollectionConfig

API_VERSION = "2024-11-06"
USER_AGENT = f"runway-costs/{__version__} (httpx/{httpx.__version__})"
ORGANIZATION_PATH = "/v1/organization"
USAGE_PATH = "/v1/organization/usage"
MAX_WINDOW_DAYS = 90
_MAX_API_TEXT = 300
# Visible ASCII only: anything else would make httpx/h11 raise with the header value in
# the exception text, i.e. the key in an error message.
_HEADER_SAFE = re.compile(r"[\x21-\x7e]+\Z")

log = logging.getLogger("runway_costs.collector.client")

_T = TypeVar("_T")
Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class ClientOptions:
    """Timeout and retry budget for every call of one client."""

    timeout_seconds: float = 20.0
    max_attempts: int = 5
    backoff_base_seconds: float = 0.5
    backoff_max_seconds: float = 30.0

    def __post_init__(self) -> None:
        if self.timeout_seconds <= 0:
            raise ValueError("timeout_seconds must be > 0")
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        if self.backoff_base_seconds < 0 or self.backoff_max_seconds < 0:
            raise ValueError("backoff seconds must be >= 0")

    @classmethod
    def from_config(cls, config: CollectionConfig) -> ClientOptions:
        return cls(
            timeout_seconds=config.timeout_seconds,
            max_attempts=config.max_attempts,
            backoff_base_seconds=config.backoff_base_seconds,
            backoff_max_seconds=config.backoff_max_seconds,
        )


def usage_windows(
    start: date, before: date, max_days: int = MAX_WINDOW_DAYS
) -> list[tuple[date, date]]:
    """Split [start, before) into consecutive windows of at most ``max_days`` (for backfill)."""
    if max_days < 1:
        raise ValueError("max_days must be >= 1")
    windows: list[tuple[date, date]] = []
    step = timedelta(days=max_days)
    cursor = start
    while cursor < before:
        end = min(cursor + step, before)
        windows.append((cursor, end))
        cursor = end
    return windows


class RunwayClient:
    """One organization's view of the Runway API.

    ``transport`` builds a private ``httpx.AsyncClient`` on it (tests: ``MockTransport``);
    ``http`` shares an existing client instead (not closed here). ``clock`` (required: time
    is an input) stamps what is fetched and dates ``Retry-After``; ``sleep`` and ``rng`` are
    injectable so tests run instantly and can assert the exact waits.
    """

    def __init__(
        self,
        org_name: str,
        base_url: str,
        api_key: SecretStr,
        options: ClientOptions | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        http: httpx.AsyncClient | None = None,
        *,
        clock: Clock,
        sleep: Sleep | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if transport is not None and http is not None:
            raise ValueError("pass transport or http, not both")
        if not isinstance(api_key, SecretStr):
            api_key = SecretStr(api_key)
        if not _HEADER_SAFE.match(api_key.get_secret_value()):
            raise ValueError(
                f"organization '{org_name}': API key is empty or contains characters "
                "not allowed in an HTTP header"
            )
        self.org_name = org_name
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self.options = options or ClientOptions()
        self._owns_http = http is None
        self._http = http or httpx.AsyncClient(transport=transport, follow_redirects=False)
        self._clock: Clock = clock
        self._sleep: Sleep = sleep or asyncio.sleep
        self._rng = rng or random.Random()
        self.stats = CallStats()

    def __repr__(self) -> str:
        return f"RunwayClient(org={self.org_name!r}, base_url={self.base_url!r})"

    async def __aenter__(self) -> RunwayClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def organization(self) -> OrgSnapshot:
        """Balance, monthly purchase cap and per-model limits/usage, stamped with our clock."""
        body, taken_at = await self._call("GET", ORGANIZATION_PATH)
        return self._parsed("GET", ORGANIZATION_PATH, parse_organization, body, taken_at)

    async def usage(self, start: date, before: date) -> UsageWindow:
        """Net credits per (date, model) for [start, before); at most 90 days per call."""
        if isinstance(start, datetime) or isinstance(before, datetime):
            raise TypeError("usage() takes dates, not datetimes")
        if before <= start:
            raise ValueError(f"usage window is empty: before {before} <= start {start}")
        if (before - start).days > MAX_WINDOW_DAYS:
            raise ValueError(
                f"usage window {start}..{before} is {(before - start).days} days; "
                f"the API allows at most {MAX_WINDOW_DAYS} (use usage_windows())"
            )
        payload = {"startDate": start.isoformat(), "beforeDate": before.isoformat()}
        body, _ = await self._call("POST", USAGE_PATH, payload)
        return self._parsed("POST", USAGE_PATH, parse_usage, body, start, before)

    # -- internals -------------------------------------------------------------------------

    def _where(self) -> str:
        return f"organization '{self.org_name}'"

    def _redact(self, text: str) -> str:
        """Belt and braces: no text from outside reaches a message with the key in it."""
        return text.replace(self._api_key.get_secret_value(), "[redacted]")

    def _headers(self) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {self._api_key.get_secret_value()}",
            "X-Runway-Version": API_VERSION,
            "User-Agent": USER_AGENT,
            "Accept": "application/json",
        }

    def _parsed(
        self, method: str, path: str, parse: Callable[..., _T], body: object, *args: object
    ) -> _T:
        try:
            return parse(body, *args)
        except FormatProblem as problem:
            raise ResponseFormatError(
                f"{self._where()}: response from {method} {path} {self._redact(problem.problem)}",
                field=problem.field,
                org=self.org_name,
                method=method,
                path=path,
            ) from None

    async def _call(
        self, method: str, path: str, payload: dict | None = None
    ) -> tuple[object, datetime]:
        """Send with retries; return the decoded JSON body and the clock at response time."""
        opts = self.options
        url = self.base_url + path
        last_cause = ""
        for attempt in range(1, opts.max_attempts + 1):
            self.stats.http_calls += 1
            retry_after: float | None = None
            try:
                response = await self._http.request(
                    method, url, json=payload, headers=self._headers(), timeout=opts.timeout_seconds
                )
            except httpx.TransportError as exc:
                cause = self._redact(describe_exception(exc))
                if not is_retryable_exception(exc):
                    raise ApiError(
                        f"{self._where()}: {method} {path} failed: {cause}",
                        org=self.org_name,
                        method=method,
                        path=path,
                    ) from None
            else:
                status = response.status_code
                if 200 <= status < 300:
                    return self._decode(method, path, response), self._clock()
                if not is_retryable_status(status):
                    raise self._status_error(method, path, response)
                cause = f"HTTP {status}"
                retry_after = parse_retry_after(response.headers.get("retry-after"), self._clock())
            last_cause = cause
            if attempt == opts.max_attempts:
                break
            delay = retry_wait(
                attempt - 1,
                retry_after,
                opts.backoff_base_seconds,
                opts.backoff_max_seconds,
                self._rng,
            )
            self.stats.retries += 1
            log.warning(
                "organization '%s': %s %s attempt %d/%d failed (%s); retrying in %.3fs",
                self.org_name,
                method,
                path,
                attempt,
                opts.max_attempts,
                cause,
                delay,
            )
            await self._sleep(delay)
        raise RetryExhaustedError(
            f"{self._where()}: {method} {path} failed after {opts.max_attempts} attempts; "
            f"last error: {last_cause}",
            attempts=opts.max_attempts,
            last_cause=last_cause,
            org=self.org_name,
            method=method,
            path=path,
        )

    def _decode(self, method: str, path: str, response: httpx.Response) -> object:
        try:
            return json.loads(response.content)
        except (UnicodeDecodeError, json.JSONDecodeError):
            ctype = response.headers.get("content-type", "no content-type")
            raise ResponseFormatError(
                f"{self._where()}: response from {method} {path} is not JSON "
                f"(HTTP {response.status_code}, {self._redact(ctype)}, "
                f"{len(response.content)} bytes)",
                org=self.org_name,
                method=method,
                path=path,
                status=response.status_code,
            ) from None

    def _api_text(self, response: httpx.Response) -> str:
        """The API's own error text: ``{"error": ...}`` when JSON, else the raw body."""
        text = response.text
        try:
            body = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError):
            body = None
        if isinstance(body, dict):
            for key in ("error", "message", "detail"):
                if isinstance(body.get(key), str):
                    text = body[key]
                    break
        text = " ".join(text.split()) or "(empty body)"
        if len(text) > _MAX_API_TEXT:
            text = text[: _MAX_API_TEXT - 3] + "..."
        return self._redact(text)

    def _status_error(self, method: str, path: str, response: httpx.Response) -> ApiError:
        status = response.status_code
        common: ErrorContext = {
            "org": self.org_name,
            "method": method,
            "path": path,
            "status": status,
        }
        if status == 401:
            return AuthError(f"{self._where()}: API key rejected (401)", **common)
        api_text = self._api_text(response)
        if status == 400:
            return BadRequestError(
                f"{self._where()}: {method} {path} rejected as a bad request (400): {api_text}",
                api_message=api_text,
                **common,
            )
        return ApiError(
            f"{self._where()}: {method} {path} failed with HTTP {status}: {api_text}", **common
        )
