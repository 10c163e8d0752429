"""Parse the two Runway API responses into ``collector.models`` types, strictly.

Strict where we depend on a field (present, right type, integer credits, ISO dates, no
negative balance, cap, limit or generation count: those are stored and alerted on), open
where the API evolves (any model name, unknown fields ignored). A problem raises
``FormatProblem`` naming the field path (``results[0].usedCredits[3].amount``); the client
turns it into a ``ResponseFormatError`` that also names the organization and the endpoint.
"""

from __future__ import annotations

import builtins
import json
import logging
import re
from datetime import date, datetime

from runway_costs.collector.models import (
    KeyUsageRow,
    ModelState,
    OrgSnapshot,
    UsageRow,
    UsageWindow,
)

log = logging.getLogger("runway_costs.collector.wire")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}\Z")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_MAX_SHOWN = 60


class FormatProblem(Exception):
    """What is wrong with a response body, phrased to follow ``response from GET /x ...``."""

    def __init__(self, field: str | None, problem: str) -> None:
        super().__init__(problem)
        self.field = field
        self.problem = problem


def _shown(value: object) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 3] + "..."


class _Node:
    """A JSON value and the path that reached it, with typed accessors that fail by path.

    The path is spelled only when asked (an error names it): a 90-day answer has
    thousands of nodes, and formatting each one's path cost more than parsing it.
    """

    __slots__ = ("value", "_parent", "_key")

    def __init__(self, value: object, parent: _Node | None = None, key: str | int = "") -> None:
        self.value = value
        self._parent = parent
        self._key = key

    @property
    def path(self) -> str:
        return "" if self._parent is None else self._parent._child(self._key)

    def _child(self, key: str | int) -> str:
        if isinstance(key, int):
            return f"{self.path}[{key}]"
        if _IDENTIFIER.match(key):
            return f"{self.path}.{key}" if self.path else key
        return f"{self.path}[{json.dumps(key)}]"

    def _wrong(self, expected: str) -> FormatProblem:
        if not self.path:
            return FormatProblem(None, f"is not {expected} (got {_shown(self.value)})")
        return FormatProblem(
            self.path, f"has '{self.path}' = {_shown(self.value)}, expected {expected}"
        )

    def object(self) -> dict:
        if not isinstance(self.value, dict):
            raise self._wrong("a JSON object")
        return self.value

    def field(self, key: str) -> _Node:
        """A required field: missing raises, present (even null) is returned for typing."""
        obj = self.object()
        if key not in obj:
            path = self._child(key)
            raise FormatProblem(path, f"is missing '{path}'")
        return _Node(obj[key], self, key)

    def optional_int(self, key: str) -> int | None:
        """An integer field that may be absent or null (the API's "no limit")."""
        obj = self.object()
        if obj.get(key) is None:
            return None
        return _Node(obj[key], self, key).count()

    def items(self) -> list[tuple[str, _Node]]:
        return [(k, _Node(v, self, k)) for k, v in self.object().items()]

    def list(self) -> list[_Node]:
        if not isinstance(self.value, list):
            raise self._wrong("a JSON array")
        return [_Node(v, self, i) for i, v in enumerate(self.value)]

    def int(self) -> int:
        # bool is an int subclass and 12.0 is a float: neither is an integer credit count.
        if type(self.value) is not int:
            raise self._wrong("an integer")
        return self.value

    def count(self) -> builtins.int:
        """A non-negative integer: a balance, a cap, a limit, a number of generations.
        (Usage amounts are net of refunds and may be negative: they use ``int``.)"""
        value = self.int()
        if value < 0:
            raise self._wrong("a non-negative integer")
        return value

    def str(self) -> str:
        if not isinstance(self.value, str) or not self.value:
            raise self._wrong("a non-empty string")
        return self.value

    def date(self) -> date:
        if isinstance(self.value, str) and _ISO_DATE.match(self.value):
            try:
                return date.fromisoformat(self.value)
            except ValueError:
                pass
        raise self._wrong("an ISO date (YYYY-MM-DD)")


def parse_organization(body: object, taken_at: datetime) -> OrgSnapshot:
    """``GET /v1/organization``: balance, monthly cap, and every model in tier or usage.

    A model only in usage gets None limits; a model only in the tier has 0 generations.
    """
    root = _Node(body)
    balance = root.field("creditBalance").count()
    tier = root.field("tier")
    cap = tier.field("maxMonthlyCreditSpend").count()
    limits = {
        name: (
            node.optional_int("maxConcurrentGenerations"),
            node.optional_int("maxDailyGenerations"),
        )
        for name, node in tier.field("models").items()
    }
    daily = {
        name: node.field("dailyGenerations").count()
        for name, node in root.field("usage").field("models").items()
    }
    models = tuple(
        ModelState(
            model=name,
            max_concurrent_generations=limits.get(name, (None, None))[0],
            max_daily_generations=limits.get(name, (None, None))[1],
            daily_generations=daily.get(name, 0),
        )
        for name in sorted(limits.keys() | daily.keys())
    )
    return OrgSnapshot(
        taken_at=taken_at, credit_balance=balance, max_monthly_credit_spend=cap, models=models
    )


def parse_usage(body: object, start: date, before: date) -> UsageWindow:
    """``POST /v1/organization/usage`` for [start, before), rows sorted by (date, model).

    A date outside the requested window or a (date, model) reported twice is a format
    error: the store replaces the whole window with what we return, so it must be exact.
    """
    root = _Node(body)
    rows: dict[tuple[date, str], UsageRow] = {}
    for result in root.field("results").list():
        day = _window_day(result, start, before)
        for used in result.field("usedCredits").list():
            model_node = used.field("model")
            model = model_node.str()
            amount = used.field("amount").int()
            if (day, model) in rows:
                raise FormatProblem(
                    model_node.path,
                    f"reports model {_shown(model)} twice for {day.isoformat()} "
                    f"(again at '{model_node.path}')",
                )
            rows[(day, model)] = UsageRow(date=day, model=model, credits=amount)
    ordered = tuple(rows[k] for k in sorted(rows))
    try:
        key_rows = _key_rows(root, start, before)
    except FormatProblem as exc:
        # Still "reserved for future use": a shape other than the SDK's costs the per-key
        # figures of this window only (left as stored), never the organization's usage.
        log.warning("resultsByApiKey ignored: the response %s", exc.problem)
        key_rows = None
    return UsageWindow(start=start, before=before, rows=ordered, key_rows=key_rows)


def _window_day(result: _Node, start: date, before: date) -> date:
    date_node = result.field("date")
    day = date_node.date()
    if not start <= day < before:
        raise FormatProblem(
            date_node.path,
            f"has '{date_node.path}' = {_shown(date_node.value)}, outside the requested "
            f"window {start.isoformat()} .. {before.isoformat()} (exclusive)",
        )
    return day


def _key_rows(root: _Node, start: date, before: date) -> tuple[KeyUsageRow, ...] | None:
    """``resultsByApiKey`` ("reserved for future use" in the official SDK): per day, net
    credits per ``apiKeyId`` (and per ``model`` if the API ever adds it). Absent or null:
    None (nothing known); a list is held to the same rules as ``results``."""
    obj = root.object()
    if obj.get("resultsByApiKey") is None:
        return None
    rows: dict[tuple[date, str, str], KeyUsageRow] = {}
    for result in root.field("resultsByApiKey").list():
        day = _window_day(result, start, before)
        for used in result.field("usedCredits").list():
            key_node = used.field("apiKeyId")
            key = key_node.str()
            model = "" if used.object().get("model") is None else used.field("model").str()
            amount = used.field("amount").int()
            if (day, key, model) in rows:
                raise FormatProblem(
                    key_node.path,
                    f"reports API key {_shown(key)} twice for {day.isoformat()} "
                    f"(again at '{key_node.path}')",
                )
            rows[(day, key, model)] = KeyUsageRow(
                date=day, api_key_id=key, credits=amount, model=model
            )
    return tuple(rows[k] for k in sorted(rows))
