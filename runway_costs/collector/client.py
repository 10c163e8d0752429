"""Async HTTP client for one Runway organization: the only code that speaks to the API.

It owns the headers, retries (``collector.retry``), error mapping (``collector.errors``) and
parsing (``collector.wire``), and counts every HTTP attempt in ``stats`` so a collection run
can record what it cost. The API key stays a ``SecretStr`` until the header is built, and is
redacted from any text that could reach an error message or a log.

Deadlines (``ClientOptions``, from ``[collection]``): each attempt of a request must be done,
connect to the last byte of the body, within ``timeout_seconds`` (a host that trickles a
byte at a time is cut off there, like one that never answers); a call makes at most
``max_attempts`` attempts with backoff waits of at most ``backoff_max_seconds`` between
them, so one call ends within ``ClientOptions.call_deadline`` =
``timeout_seconds * max_attempts + backoff_max_seconds * (max_attempts - 1)``.
Bodies are read as a stream and decoded here (gzip, deflate or identity), stopping past
``max_body_bytes`` (``MAX_BODY_BYTES``, 8 MiB, decoded), so a decompression bomb never
inflates in memory.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import re
import zlib
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
    ResponseTooLargeError,
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
# The most a response body may hold once decoded. The largest real answer (90 days of
# usage for every model) is tens of KiB; past this the body is not read any further.
MAX_BODY_BYTES = 8 * 1024 * 1024
_MAX_ERROR_BODY = 64 * 1024  # an error response is read this far (we show 300 chars)
ACCEPT_ENCODING = "gzip, deflate"  # only what _BodyReader decodes itself
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
    max_body_bytes: int = MAX_BODY_BYTES

    def __post_init__(self) -> None:
        if self.timeout_seconds <= 0:
            raise ValueError("timeout_seconds must be > 0")
        if self.max_body_bytes < 1:
            raise ValueError("max_body_bytes must be >= 1")
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        if self.backoff_base_seconds < 0 or self.backoff_max_seconds < 0:
            raise ValueError("backoff seconds must be >= 0")

    @property
    def call_deadline(self) -> float:
        """The longest one call can take: every attempt used up, every backoff at its cap
        (a server's Retry-After is capped there too)."""
        return self.timeout_seconds * self.max_attempts + self.backoff_max_seconds * (
            self.max_attempts - 1
        )

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
            "Accept-Encoding": ACCEPT_ENCODING,
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
                async with asyncio.timeout(opts.timeout_seconds):
                    response, body = await self._send(method, url, path, payload)
            except TimeoutError:
                cause = (
                    f"no complete response within {opts.timeout_seconds:g} s (connect + whole body)"
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
                    return self._decode(method, path, response, body), self._clock()
                if not is_retryable_status(status):
                    raise self._status_error(method, path, response, body)
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

    async def _send(
        self, method: str, url: str, path: str, payload: dict | None
    ) -> tuple[httpx.Response, bytes]:
        """One attempt: the response (headers) and its body, streamed and capped."""
        opts = self.options
        async with self._http.stream(
            method, url, json=payload, headers=self._headers(), timeout=opts.timeout_seconds
        ) as response:
            ok = 200 <= response.status_code < 300
            limit = opts.max_body_bytes if ok else min(opts.max_body_bytes, _MAX_ERROR_BODY)
            try:
                length = int(response.headers.get("content-length", ""))
            except ValueError:
                length = -1
            if ok and length > limit:
                raise self._too_large(method, path)
            try:
                if response.is_stream_consumed:  # an in-process transport: body in memory
                    reader = _BodyReader(None, limit)  # (already decoded by httpx)
                    reader.feed(response.content)
                else:
                    reader = _BodyReader(response.headers.get("content-encoding"), limit)
                    async for chunk in response.aiter_raw():
                        reader.feed(chunk)
                        if reader.full:
                            break
                reader.finish()
            except _BodyProblem as problem:
                raise ResponseFormatError(
                    f"{self._where()}: response from {method} {path} {problem}",
                    org=self.org_name,
                    method=method,
                    path=path,
                    status=response.status_code,
                ) from None
            if reader.full and ok:
                raise self._too_large(method, path)
            return response, reader.body()

    def _too_large(self, method: str, path: str) -> ResponseTooLargeError:
        cap = self.options.max_body_bytes
        return ResponseTooLargeError(
            f"{self._where()}: response from {method} {path} is larger than the "
            f"{_size(cap)} cap on a response body (decoded); stopped reading",
            limit=cap,
            org=self.org_name,
            method=method,
            path=path,
        )

    def _decode(self, method: str, path: str, response: httpx.Response, body: bytes) -> object:
        try:
            return json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError):
            ctype = response.headers.get("content-type", "no content-type")
            raise ResponseFormatError(
                f"{self._where()}: response from {method} {path} is not JSON "
                f"(HTTP {response.status_code}, {self._redact(ctype)}, "
                f"{len(body)} bytes)",
                org=self.org_name,
                method=method,
                path=path,
                status=response.status_code,
            ) from None

    def _api_text(self, body: bytes) -> str:
        """The API's own error text: ``{"error": ...}`` when JSON, else the raw body."""
        text = body.decode("utf-8", errors="replace")
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError:
            parsed = None
        if isinstance(parsed, dict):
            for key in ("error", "message", "detail"):
                if isinstance(parsed.get(key), str):
                    text = parsed[key]
                    break
        text = " ".join(text.split()) or "(empty body)"
        if len(text) > _MAX_API_TEXT:
            text = text[: _MAX_API_TEXT - 3] + "..."
        return self._redact(text)

    def _status_error(
        self, method: str, path: str, response: httpx.Response, body: bytes
    ) -> ApiError:
        status = response.status_code
        common: ErrorContext = {
            "org": self.org_name,
            "method": method,
            "path": path,
            "status": status,
        }
        if status == 401:
            return AuthError(f"{self._where()}: API key rejected (401)", **common)
        api_text = self._api_text(body)
        if status == 400:
            return BadRequestError(
                f"{self._where()}: {method} {path} rejected as a bad request (400): {api_text}",
                api_message=api_text,
                **common,
            )
        return ApiError(
            f"{self._where()}: {method} {path} failed with HTTP {status}: {api_text}", **common
        )


def _size(n: int) -> str:
    """``8 MiB`` for a whole number of MiB, else the bytes."""
    return f"{n // 2**20} MiB" if n % 2**20 == 0 else f"{n} bytes"


class _BodyProblem(Exception):
    """The body cannot be decoded (phrased to follow ``response from GET /x``)."""


class _BodyReader:
    """Decode a body chunk by chunk, never holding more than ``limit`` decoded bytes.

    zlib's ``max_length`` bounds every step, so a small compressed chunk that would
    inflate to gigabytes stops at the cap instead; ``full`` then says reading stopped.
    """

    def __init__(self, encoding: str | None, limit: int) -> None:
        name = (encoding or "identity").strip().lower()
        if name not in ("identity", "gzip", "x-gzip", "deflate"):
            raise _BodyProblem(f"has an unsupported Content-Encoding {name[:40]!r}")
        self._raw = name == "identity"
        self._deflate = name == "deflate"
        wbits = zlib.MAX_WBITS if self._deflate else 16 + zlib.MAX_WBITS
        self._zlib = zlib.decompressobj(wbits)
        self._first = True
        self.limit = limit
        self.size = 0
        self._raw_size = 0
        self.full = False
        self._parts: list[bytes] = []

    def _keep(self, data: bytes) -> None:
        room = self.limit - self.size
        if len(data) > room:
            data, self.full = data[:room], True
        self.size += len(data)
        self._parts.append(data)

    def feed(self, chunk: bytes) -> None:
        if self._raw:
            self._keep(chunk)
            return
        self._raw_size += len(chunk)
        if self._raw_size > self.limit:  # compressed bytes count against the cap too
            self.full = True
            return
        try:
            while chunk and not self.full:
                self._keep(self._zlib.decompress(chunk, self.limit - self.size + 1))
                chunk = self._zlib.unconsumed_tail
        except zlib.error:
            if not (self._deflate and self._first):
                raise _BodyProblem("has a body that is not valid compressed data") from None
            self._zlib = zlib.decompressobj(-zlib.MAX_WBITS)  # raw deflate, no zlib header
            self._first = False
            self._raw_size -= len(chunk)
            self.feed(chunk)
        self._first = False

    def finish(self) -> None:
        if self._raw or self.full:
            return
        try:
            self._keep(self._zlib.flush())
        except zlib.error:
            raise _BodyProblem("has a body that is not valid compressed data") from None

    def body(self) -> bytes:
        return b"".join(self._parts)
