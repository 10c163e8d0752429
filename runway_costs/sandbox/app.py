"""The sandbox's HTTP face: Runway's two organization endpoints plus ``/_sandbox`` controls.

Error bodies follow Runway's shape: ``{"error": ..., "issues": [...], "docUrl": ...}``.
The fault layer sits outermost, as raw ASGI, so that it can count every request and
drop a connection in the middle of a response.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
from collections import Counter, defaultdict, deque
from datetime import date, timedelta

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from runway_costs.sandbox.catalog import API_VERSION
from runway_costs.sandbox.faults import FaultSpecError, FaultState, parse_faults
from runway_costs.sandbox.world import Org, World

DOC_URL = "https://docs.dev.runwayml.com/api"
MAX_WINDOW_DAYS = 90
DEFAULT_WINDOW_DAYS = 30
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class ApiError(Exception):
    """An HTTP error answer in Runway's JSON shape."""

    def __init__(self, status: int, error: str, issues: list[dict] | None = None) -> None:
        super().__init__(error)
        self.status, self.error, self.issues = status, error, issues

    def response(self) -> JSONResponse:
        body: dict = {"error": self.error}
        if self.issues is not None:
            body["issues"] = self.issues
        body["docUrl"] = DOC_URL
        return JSONResponse(body, status_code=self.status)


def bearer_key(headers: dict[str, str]) -> str:
    """The key from ``Authorization: Bearer <key>`` ('' when absent)."""
    auth = headers.get("authorization", "")
    scheme, _, token = auth.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def _authenticate(world: World, request: Request) -> Org:
    org = world.by_key(bearer_key(dict(request.headers)))
    if org is None:
        raise ApiError(401, "Invalid API key. Pass a valid key as 'Authorization: Bearer <key>'.")
    version = request.headers.get("x-runway-version")
    if version is None:
        raise ApiError(400, "The X-Runway-Version header is required (e.g. 2024-11-06).")
    if version != API_VERSION:
        raise ApiError(400, f"Unsupported X-Runway-Version {version!r}; use {API_VERSION}.")
    return org


def _issue(field: str, message: str, code: str = "custom") -> ApiError:
    return ApiError(
        400, "Validation of body failed", [{"code": code, "path": [field], "message": message}]
    )


def _date_field(body: dict, field: str) -> date | None:
    value = body.get(field)
    if value is None:
        return None
    if not isinstance(value, str) or not _ISO_DATE.match(value):
        raise _issue(
            field, f"{field} must be an ISO-8601 date (YYYY-MM-DD), got {value!r}", "invalid_string"
        )
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise _issue(field, f"{field} is not a valid date: {value!r}", "invalid_date") from None


async def _json_body(request: Request) -> dict:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError:
        raise ApiError(400, "Request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise ApiError(400, "Request body must be a JSON object.")
    return body


def usage_window(body: dict, today: date) -> tuple[date, date]:
    """Resolve and check [startDate, beforeDate) against the API's rules."""
    start = _date_field(body, "startDate")
    before = _date_field(body, "beforeDate")
    start = start or today - timedelta(days=DEFAULT_WINDOW_DAYS)
    before = before or start + timedelta(days=DEFAULT_WINDOW_DAYS)
    if start < today - timedelta(days=MAX_WINDOW_DAYS):
        raise _issue(
            "startDate",
            f"startDate must be at most {MAX_WINDOW_DAYS} days before today "
            f"({today - timedelta(days=MAX_WINDOW_DAYS)}), got {start}",
            "too_small",
        )
    if before <= start:
        raise _issue(
            "beforeDate", f"beforeDate ({before}) must be after startDate ({start})", "too_small"
        )
    if (before - start).days > MAX_WINDOW_DAYS:
        raise _issue(
            "beforeDate",
            f"beforeDate must be at most {MAX_WINDOW_DAYS} days after "
            f"startDate, got {(before - start).days} days",
            "too_big",
        )
    return start, before


class Stats:
    """Request counts per organization/key and path, statuses and injected faults."""

    def __init__(self, world: World) -> None:
        self._world = world
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._requests: dict[str, Counter] = defaultdict(Counter)
            self._statuses: dict[str, Counter] = defaultdict(Counter)
            self._faults: dict[str, Counter] = defaultdict(Counter)
            self._log: deque[dict] = deque(maxlen=1000)

    def _who(self, key: str) -> str:
        org = self._world.by_key(key)
        return org.name if org else ("<missing>" if not key else "<unknown>")

    def request(self, key: str, path: str) -> None:
        with self._lock:
            self._requests[key][path] += 1

    def status(self, key: str, status: int) -> None:
        with self._lock:
            self._statuses[key][str(status)] += 1

    def fault(self, key: str, path: str, kind: str, status: int | None) -> None:
        with self._lock:
            self._faults[key][kind] += 1
            self._log.append({"org": self._who(key), "path": path, "fault": kind, "status": status})

    def snapshot(self) -> dict:
        with self._lock:

            def by_org(table: dict[str, Counter]) -> dict[str, dict[str, int]]:
                out: dict[str, Counter] = defaultdict(Counter)
                for key, counts in table.items():
                    out[self._who(key)].update(counts)
                return {k: dict(v) for k, v in out.items()}

            return {
                "total": sum(sum(c.values()) for c in self._requests.values()),
                "requests": by_org(self._requests),
                "by_key": {k: dict(v) for k, v in self._requests.items()},
                "statuses": by_org(self._statuses),
                "faults": by_org(self._faults),
                "fault_log": list(self._log),
            }


class FaultLayer:
    """Outermost ASGI layer for ``/v1/*``: counts requests, then injects the fault due."""

    def __init__(self, app: ASGIApp, state: SandboxState) -> None:
        self.app, self.state = app, state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        key, path, stats = bearer_key(headers), scope["path"], self.state.stats
        stats.request(key, path)
        action = self.state.faults.next_action(key)

        async def counting_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                stats.status(key, message["status"])
            await send(message)

        if action is None:
            await self.app(scope, receive, counting_send)
            return
        stats.fault(key, path, action.kind, action.status)
        if action.kind == "slow":
            await asyncio.sleep(action.seconds or 0)
            await self.app(scope, receive, counting_send)
        elif action.kind == "drop":
            await _drop(send, action.at or "body")
        else:
            headers_out = (
                {"Retry-After": str(action.retry_after)} if action.retry_after is not None else {}
            )
            error = "Too many requests" if action.status == 429 else "Upstream unavailable"
            response = JSONResponse(
                {"error": error}, status_code=action.status or 503, headers=headers_out
            )
            await response(scope, receive, counting_send)


async def _drop(send: Send, at: str) -> None:
    """Cut the connection. ``body``: promise 4096 bytes, send a fragment and return, so
    uvicorn closes the connection mid-body. ``start``: close uvicorn's transport before
    any byte is written (the client sees the server disconnect without a response)."""
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    if at == "start" and transport is not None:
        transport.close()
        for _ in range(3):  # let connection_lost run, so uvicorn knows not to answer
            await asyncio.sleep(0)
        return
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json"), (b"content-length", b"4096")],
        }
    )
    await send({"type": "http.response.body", "body": b'{"creditBalance": ', "more_body": True})


class SandboxState:
    """What the routes share: the world, the fault counters and the stats."""

    def __init__(self, world: World, faults: str | None) -> None:
        self.world = world
        self.faults = FaultState(parse_faults(faults, seed=world.seed))
        self.stats = Stats(world)

    def set_faults(self, spec: str | None) -> None:
        """Replace the fault plan; counters start again from zero."""
        self.faults = FaultState(parse_faults(spec, seed=self.world.seed))


def build_app(state: SandboxState) -> ASGIApp:
    """The ASGI app: Runway routes + controls, wrapped in the fault layer."""
    world = state.world

    async def organization(request: Request) -> JSONResponse:
        try:
            org = _authenticate(world, request)
        except ApiError as exc:
            return exc.response()
        return JSONResponse(world.organization_body(org))

    async def usage(request: Request) -> JSONResponse:
        try:
            org = _authenticate(world, request)
            now = world.now()
            start, before = usage_window(await _json_body(request), now.date())
        except ApiError as exc:
            return exc.response()
        return JSONResponse(world.usage_body(org, start, before, now))

    async def clock(request: Request) -> JSONResponse:
        if request.method == "POST":
            try:
                body = await _json_body(request)
                if "now" not in body:
                    raise ValueError("missing 'now'")
                world.set_now(body["now"])
            except (ApiError, ValueError, TypeError) as exc:
                return ApiError(
                    400, f"clock: expected {{'now': ISO timestamp or null}}: {exc}"
                ).response()
        return JSONResponse(
            {"now": world.now().isoformat().replace("+00:00", "Z"), "frozen": world.frozen}
        )

    async def stats(request: Request) -> JSONResponse:
        return JSONResponse(state.stats.snapshot())

    async def stats_reset(request: Request) -> JSONResponse:
        state.stats.reset()
        return JSONResponse(state.stats.snapshot())

    async def faults(request: Request) -> JSONResponse:
        if request.method == "POST":
            try:
                state.set_faults((await _json_body(request)).get("faults"))
            except (ApiError, FaultSpecError) as exc:
                return ApiError(400, str(exc)).response()
        return JSONResponse({"faults": state.faults.plan.spec})

    async def orgs(request: Request) -> JSONResponse:
        return JSONResponse({"orgs": world.public_orgs()})

    async def not_found(request: Request, exc: Exception) -> JSONResponse:
        return ApiError(404, f"Not found: {request.method} {request.url.path}").response()

    async def not_allowed(request: Request, exc: Exception) -> JSONResponse:
        return ApiError(405, f"Method not allowed: {request.method} {request.url.path}").response()

    routes = [
        Route("/v1/organization", organization, methods=["GET"]),
        Route("/v1/organization/usage", usage, methods=["POST"]),
        Route("/_sandbox/clock", clock, methods=["GET", "POST"]),
        Route("/_sandbox/stats", stats, methods=["GET"]),
        Route("/_sandbox/stats/reset", stats_reset, methods=["POST"]),
        Route("/_sandbox/faults", faults, methods=["GET", "POST"]),
        Route("/_sandbox/orgs", orgs, methods=["GET"]),
    ]
    app = Starlette(routes=routes, exception_handlers={404: not_found, 405: not_allowed})
    return FaultLayer(app, state)
