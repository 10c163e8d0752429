"""One collection cycle: fetch every organization concurrently, write each as it finishes.

Fetching is async (httpx), bounded by ``collection.concurrency``; one organization's
failure is recorded as its own failed run and never touches another's. Every organization
has a deadline (``org_deadline``: its planned requests times the client's per-call
deadline, plus a second), so a slow host fails its organization alone. Organizations are
written as soon as they are done, those finished together in one transaction of up to
``WRITE_BATCH`` (``collector.writes``: each org's data and its ``collection_runs`` row
commit together; a batch that fails is written again one org per transaction, so a bad
org fails alone), under the write lock, from a worker thread while the others are still
fetching. Writes keep the configured order, except that a finished
organization waits at most ``ORDER_GRACE_SECONDS`` for slower ones ahead of it. The
snapshot is published once, after the last organization, so readers see whole cycles.

``after_write`` is the seam for work done once per cycle on the cycle's data (the stored
outlooks, issue #12): the collector cannot import analytics, so the caller passes it in.
It runs once per cycle, in the write session of the last organizations, after every
organization is written and committed and before the one publish, with the live
connection (still under the write lock) and the cycle's instant, so what it stores is
published with the data it was computed from. Its failure never costs the cycle: the
organizations are already committed, its open transaction is rolled back, one line is
logged, and the snapshot is published anyway (without what it failed to store).

A stop request during the fetch abandons the organizations still fetching (nothing is
written for them) and writes those already finished; a write in progress finishes, so no
transaction is ever left half done.

Public API:
    run_cycle(settings, kind="full", *, clock, progress=None, stop_event=None,
              plans=None, after_write=None) -> CycleResult      (async)
    AfterWrite = Callable[[duckdb.DuckDBPyConnection, datetime], None]
    run_cycle_sync(...)  -> CycleResult                   (same, for CLI and scheduler)
    plan_usage(today, last_collected, refresh_days) -> tuple[date, date]
    org_deadline(options, requests) -> float
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import logging
import ssl
import threading
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Literal, ParamSpec, TypeVar, cast

import duckdb
import httpx

from runway_costs.collector.archive import archive_step, history_views
from runway_costs.collector.client import ClientOptions, RunwayClient, usage_windows
from runway_costs.collector.errors import ApiError
from runway_costs.collector.models import CallStats, OrgSnapshot, UsageWindow
from runway_costs.collector.store import (
    RunRecord,
    last_usage_dates,
    locked_connection,
    rollback_quietly,
    write_failed_run,
    write_org_result,
    write_session,
)
from runway_costs.collector.writes import OrgWrite, write_org_results
from runway_costs.core.clock import Clock
from runway_costs.core.config import OrgConfig, Settings
from runway_costs.core.windows import USAGE_HISTORY_DAYS

log = logging.getLogger("runway_costs.collector.cycle")

Kind = Literal["full", "snapshot", "usage"]
KINDS: tuple[str, ...] = ("full", "snapshot", "usage")
HISTORY_DAYS = USAGE_HISTORY_DAYS  # how far back the API serves usage
WRITE_LOCK_TIMEOUT = 60.0
ORDER_GRACE_SECONDS = 1.0  # how long a finished org waits for a slower one ahead of it
# How far the fetch may run ahead of the writer: a worker starts no org while this many
# finished ones are not written yet (so at most this + concurrency are held). Bounds the
# memory of a backfill (90 days of rows per org) when the writer is the slower side.
MAX_UNWRITTEN_ORGS = 1000
WRITE_BATCH = 500  # orgs per write transaction (collector.writes)
# A write session costs opening the file and a checkpoint (~0.25 s on a busy 2-core
# machine): finished orgs wait up to this long for others to share their session, unless
# WRITE_BATCH of them are ready, they are the cycle's last, or the fetch waits on them.
WRITE_GATHER_SECONDS = 2.0
ORG_DEADLINE_SLACK_SECONDS = 1.0
_STOP_POLL_SECONDS = 0.05

# progress(done_requests, planned_requests) after each organization's request completes
Progress = Callable[[int, int], None]
# after_write(con, at): see the module doc. ``con`` is the live database under the write
# lock (autocommit; open and commit your own transaction), ``at`` the cycle's instant.
AfterWrite = Callable[[duckdb.DuckDBPyConnection, datetime], None]
P = ParamSpec("P")
R = TypeVar("R")


class CycleAbandoned(Exception):
    """A stop was requested while fetching: the organizations still fetching were
    abandoned and nothing was written for them (finished ones were written)."""


@dataclass(frozen=True, slots=True)
class OrgResult:
    """What one organization's run did, as shown by ``collect`` and stored in collection_runs."""

    org: str
    status: str  # 'ok' | 'failed'
    rows_changed: int
    http_calls: int
    retries: int
    error: str | None = None
    usage_start: date | None = None
    usage_before: date | None = None
    backfill: bool = False


@dataclass(frozen=True, slots=True)
class CycleResult:
    kind: str
    orgs: tuple[OrgResult, ...]

    @property
    def ok(self) -> bool:
        return all(r.status == "ok" for r in self.orgs)

    @property
    def failed(self) -> tuple[OrgResult, ...]:
        return tuple(r for r in self.orgs if r.status != "ok")


@dataclass(slots=True)
class OrgPlan:
    org: OrgConfig
    snapshot: bool
    windows: list[tuple[date, date]]
    backfill: bool

    @property
    def requests(self) -> int:
        return int(self.snapshot) + len(self.windows)


@dataclass(slots=True)
class _Fetched:
    plan: OrgPlan
    started_at: datetime
    finished_at: datetime | None = None
    stats: CallStats = field(default_factory=CallStats)
    snapshot: OrgSnapshot | None = None
    usage: list[UsageWindow] = field(default_factory=list)
    error: str | None = None


def plan_usage(today: date, last_collected: date | None, refresh_days: int) -> tuple[date, date]:
    """The usage range [start, before) to request for one organization.

    First time: the whole history the API serves (today-90 through today). Later: the
    last ``refresh_days`` days, reaching back further if the last collection is older
    (collector was down), never past the API's 90-day limit.
    """
    earliest = today - timedelta(days=HISTORY_DAYS)
    before = today + timedelta(days=1)
    if last_collected is None:
        return earliest, before
    start = min(
        today - timedelta(days=refresh_days - 1),
        last_collected - timedelta(days=refresh_days - 1),
    )
    return max(start, earliest), before


def _plans(settings: Settings, kind: str, today: date, last: dict[str, date]) -> list[OrgPlan]:
    plans = []
    for org in settings.orgs:
        windows: list[tuple[date, date]] = []
        if kind in ("full", "usage"):
            start, before = plan_usage(today, last.get(org.name), settings.collection.refresh_days)
            windows = usage_windows(start, before)
        plans.append(
            OrgPlan(
                org=org,
                snapshot=kind in ("full", "snapshot"),
                windows=windows,
                backfill=bool(windows) and org.name not in last,
            )
        )
    return plans


def _safe_error(exc: BaseException, org: OrgConfig) -> str:
    """Error text for the run row and the console: never the key."""
    if isinstance(exc, ApiError):
        text = str(exc)
    else:
        text = f"organization '{org.name}': unexpected {type(exc).__name__}: {exc}"
    key = org.api_key.get_secret_value()
    return text.replace(key, "[redacted]") if key else text


def org_deadline(options: ClientOptions, requests: int) -> float:
    """Seconds one organization's fetch may take: each planned request at most the
    client's ``call_deadline`` (every attempt and backoff used up), plus a second."""
    return max(1, requests) * options.call_deadline + ORG_DEADLINE_SLACK_SECONDS


async def _fetch_org(
    plan: OrgPlan,
    options: ClientOptions,
    http: httpx.AsyncClient,
    tick: Callable[[], None],
    clock: Clock,
) -> _Fetched:
    out = _Fetched(plan=plan, started_at=clock())
    org = plan.org
    try:
        client = RunwayClient(
            org.name, org.base_url, org.api_key, options=options, http=http, clock=clock
        )
    except ValueError as exc:
        out.error = _safe_error(exc, org)
        out.finished_at = clock()
        return out
    out.stats = client.stats
    deadline = org_deadline(options, plan.requests)
    try:
        async with asyncio.timeout(deadline), client:
            if plan.snapshot:
                out.snapshot = await client.organization()
                tick()
            for start, before in plan.windows:
                out.usage.append(await client.usage(start, before))
                tick()
    except asyncio.CancelledError:
        raise
    except TimeoutError:
        out.error = f"organization '{org.name}': not collected within its {deadline:g} s deadline"
        out.snapshot, out.usage = None, []
        log.warning("%s", out.error)
    except Exception as exc:  # one org's failure is its own: record it, go on
        out.error = _safe_error(exc, org)
        out.snapshot, out.usage = None, []
        log.warning("%s", out.error)
    out.finished_at = clock()
    return out


class _WriteOrder:
    """Which finished, unwritten orgs to write now, in plan order: those with every org
    ahead of them finished, and those that have waited ``ORDER_GRACE_SECONDS`` already.

    Incremental (a pointer past the finished prefix, a dict of the unwritten), so a wake
    costs the unwritten orgs, not the whole plan: at 10,000 orgs a scan of the plan per
    finished org was quadratic.
    """

    def __init__(self, total: int) -> None:
        self.total = total
        self.unwritten: dict[int, tuple[_Fetched, float]] = {}
        self.finished: set[int] = set()
        self.written = 0
        self._prefix = 0  # every org before this index has finished

    def finish(self, index: int, fetched: _Fetched, at: float) -> None:
        self.finished.add(index)
        self.unwritten[index] = (fetched, at)
        while self._prefix in self.finished:
            self._prefix += 1

    def ready(self, now: float, *, everything: bool = False) -> list[int]:
        return sorted(
            i
            for i, (_, at) in self.unwritten.items()
            if everything or i < self._prefix or now - at >= ORDER_GRACE_SECONDS
        )

    def take(self, indices: Sequence[int]) -> list[_Fetched]:
        self.written += len(indices)
        return [self.unwritten.pop(i)[0] for i in indices]

    def gather_left(self, ready: Sequence[int], now: float) -> float:
        """Seconds the ready orgs may still wait for others to join their session."""
        oldest = min(self.unwritten[i][1] for i in ready)
        return oldest + WRITE_GATHER_SECONDS - now

    def next_due(self, now: float, ready: Sequence[int] = ()) -> float | None:
        """Seconds until the next unwritten org not in ``ready`` is past its grace (None:
        none waiting)."""
        skip = set(ready)
        times = [at for i, (_, at) in self.unwritten.items() if i not in skip]
        return max(0.0, min(times) + ORDER_GRACE_SECONDS - now) if times else None


def _http_client(ssl_context: ssl.SSLContext) -> httpx.AsyncClient:
    """One fetch worker's client: one keep-alive connection (its orgs are fetched one
    after another), so httpcore's pool bookkeeping (quadratic in the connections of a
    pool, every request) stays O(1); the TLS context is shared, built once."""
    return httpx.AsyncClient(
        limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
        follow_redirects=False,
        verify=ssl_context,
    )


async def _collect(
    plans: Sequence[OrgPlan],
    settings: Settings,
    kind: str,
    progress: Progress | None,
    stop_event: threading.Event | None,
    clock: Clock,
    after_write: AfterWrite | None = None,
) -> tuple[OrgResult, ...]:
    """Fetch every org concurrently; write each as it finishes (see the module doc).

    ``collection.concurrency`` workers each take the next org in plan order and fetch it
    on their own keep-alive connection; the writer thread takes the finished ones, in
    sessions of many (``WRITE_GATHER_SECONDS``). The workers wait while
    ``MAX_UNWRITTEN_ORGS`` finished orgs are not written yet.
    """
    cfg = settings.collection
    options = ClientOptions.from_config(cfg)
    loop = asyncio.get_running_loop()
    total = sum(p.requests for p in plans)
    done = 0
    order = _WriteOrder(len(plans))
    queue = collections.deque(range(len(plans)))
    results: dict[int, OrgResult] = {}
    changed = asyncio.Event()
    room = asyncio.Event()  # set when the writer takes finished orgs
    ssl_context = httpx.create_ssl_context()

    def tick() -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, total)

    async def worker() -> None:
        async with _http_client(ssl_context) as http:
            while queue:
                while len(order.unwritten) >= MAX_UNWRITTEN_ORGS:
                    room.clear()
                    await room.wait()
                if not queue:
                    break
                index = queue.popleft()
                fetched = await _fetch_org(plans[index], options, http, tick, clock)
                order.finish(index, fetched, loop.time())
                changed.set()

    workers = [asyncio.create_task(worker()) for _ in range(min(cfg.concurrency, len(plans)))]
    for task in workers:
        task.add_done_callback(lambda _: changed.set())
    try:
        while len(results) < len(plans):
            changed.clear()
            if not order.unwritten and all(t.done() for t in workers):
                for task in workers:  # a worker died outside an org's own error handling
                    if not task.cancelled() and task.exception() is not None:
                        raise cast(BaseException, task.exception())
                raise RuntimeError("collection workers ended with organizations unfetched")
            stopping = stop_event is not None and stop_event.is_set()
            # stopping: write what is finished, abandon the rest
            now = loop.time()
            ready = order.ready(now, everything=stopping)
            last = len(results) + len(ready) == len(plans)
            gather = 0.0
            if ready and not (
                stopping
                or last
                or len(ready) >= WRITE_BATCH
                or len(order.unwritten) >= MAX_UNWRITTEN_ORGS
            ):
                gather = order.gather_left(ready, now)
            if ready and gather <= 0:
                batch = order.take(ready)
                room.set()
                written = await asyncio.to_thread(
                    _write,
                    settings,
                    kind,
                    batch,
                    clock,
                    publish=last,
                    after_write=after_write if last else None,
                )
                results.update(zip(ready, written, strict=True))
                continue
            if stopping:
                missing = len(plans) - len(results)
                raise CycleAbandoned(
                    f"stop requested while fetching; {missing} organization(s) not "
                    "finished, nothing written for them"
                )
            waits = [w for w in (order.next_due(now, ready),) if w is not None]
            if ready:
                waits.append(gather)
            if stop_event is not None:
                waits.append(_STOP_POLL_SECONDS)
            timeout = min(waits) if waits else None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), timeout)
    finally:
        queue.clear()
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
    return tuple(results[i] for i in range(len(plans)))


def _write(
    settings: Settings,
    kind: str,
    fetched: Sequence[_Fetched],
    clock: Clock,
    *,
    publish: bool = True,
    after_write: AfterWrite | None = None,
) -> tuple[OrgResult, ...]:
    """Write the orgs in batches of up to ``WRITE_BATCH`` per transaction (each org's data
    and run row in its batch's transaction), then run ``after_write`` (the cycle's last
    session only); publish on leaving the session if asked."""
    results: list[OrgResult] = []
    with write_session(settings.db_path, timeout=WRITE_LOCK_TIMEOUT, publish=publish) as con:
        for i in range(0, len(fetched), WRITE_BATCH):
            results += _write_batch(con, kind, fetched[i : i + WRITE_BATCH], clock)
        if publish:  # the cycle's last session
            _run_archive(con, settings, clock)
        if after_write is not None:
            with history_views(con):  # the step reads history whole: live rows + parts
                _run_after_write(after_write, con, clock)
    return tuple(results)


def _run_archive(con: duckdb.DuckDBPyConnection, settings: Settings, clock: Clock) -> None:
    """Move the days past their horizon to Parquet parts (``collector.archive``), once per
    cycle before the one publish. Its failure is logged (one line), never raised: the
    rows stay live and the next cycle archives them."""
    try:
        report = archive_step(con, settings.db_path, clock())
    except Exception as exc:
        rollback_quietly(con)
        log.error(
            "archiving old history failed, keeping it live until the next cycle: %s: %s",
            type(exc).__name__,
            " ".join(str(exc).split()),
        )
        return
    if report.files_written or report.files_merged or report.files_deleted:
        log.info(
            "archived %d rows into %d parts, merged %d, deleted %d (%.1f s)",
            sum(report.rows.values()),
            report.files_written,
            report.files_merged,
            report.files_deleted,
            report.seconds,
        )


def _write_batch(
    con: duckdb.DuckDBPyConnection, kind: str, batch: Sequence[_Fetched], clock: Clock
) -> list[OrgResult]:
    """Many orgs in one transaction with a fixed number of statements (``writes``: the
    per-org transaction cost 25-50 ms, 10,000 orgs 250-500 s). If the batch fails (an
    org's data the database refuses), it was rolled back whole: its orgs are written
    again one per transaction, so the bad org fails alone."""
    records = [_record(kind, f, clock) for f in batch]
    items = [
        OrgWrite(r, f.snapshot, f.usage) if f.error is None else OrgWrite.failed(r)
        for f, r in zip(batch, records, strict=True)
    ]
    try:
        changed = write_org_results(con, items)
    except Exception as exc:
        log.warning(
            "a batch of %d organizations failed, writing them one by one: %s",
            len(batch),
            " ".join(str(exc).split()),
        )
        return [_write_one(con, kind, f, clock) for f in batch]
    return [_result(f, n) for f, n in zip(batch, changed, strict=True)]


def _run_after_write(after_write: AfterWrite, con: duckdb.DuckDBPyConnection, clock: Clock) -> None:
    """Call the cycle's after-write step; its failure is logged (one line) and rolled
    back, never raised: the organizations are committed and must still be published."""
    try:
        after_write(con, clock())
    except Exception as exc:
        rollback_quietly(con)
        text = " ".join(str(exc).split())
        log.error(
            "after-write step failed, publishing the data without it: %s: %s",
            type(exc).__name__,
            text,
        )


def _record(kind: str, f: _Fetched, clock: Clock) -> RunRecord:
    plan = f.plan
    return RunRecord(
        org=plan.org.name,
        kind=kind,
        started_at=f.started_at,
        finished_at=f.finished_at or clock(),
        http_calls=f.stats.http_calls,
        retries=f.stats.retries,
        usage_start=plan.windows[0][0] if plan.windows else None,
        usage_before=plan.windows[-1][1] if plan.windows else None,
        error=f.error,
    )


def _write_one(con: duckdb.DuckDBPyConnection, kind: str, f: _Fetched, clock: Clock) -> OrgResult:
    plan = f.plan
    record = _record(kind, f, clock)
    changed = 0
    if f.error is None:
        try:
            changed = write_org_result(con, record, f.snapshot, f.usage)
        except Exception as exc:  # e.g. a constraint the data breaks: this org fails alone
            f.error = _safe_error(
                RuntimeError(f"organization '{plan.org.name}': cannot store the data: {exc}"),
                plan.org,
            ).removeprefix(f"organization '{plan.org.name}': unexpected RuntimeError: ")
            log.error("%s", f.error)
    if f.error is not None:
        record = RunRecord(**{**_as_dict(record), "error": f.error})
        write_failed_run(con, record)
    return _result(f, changed)


def _result(f: _Fetched, changed: int) -> OrgResult:
    plan = f.plan
    return OrgResult(
        org=plan.org.name,
        status="ok" if f.error is None else "failed",
        rows_changed=changed,
        http_calls=f.stats.http_calls,
        retries=f.stats.retries,
        error=f.error,
        usage_start=plan.windows[0][0] if plan.windows else None,
        usage_before=plan.windows[-1][1] if plan.windows else None,
        backfill=plan.backfill,
    )


def _as_dict(record: RunRecord) -> dict:
    return {name: getattr(record, name) for name in RunRecord.__slots__}


def prepare(settings: Settings, kind: str, today: date) -> list[OrgPlan]:
    """Read what each org already has (briefly, under the write lock) and plan requests
    for the usage windows up to ``today`` (UTC)."""
    if kind not in KINDS:
        raise ValueError(f"cycle kind must be one of {', '.join(KINDS)}, got {kind!r}")
    last: dict[str, date] = {}
    if kind != "snapshot":
        with locked_connection(settings.db_path, timeout=WRITE_LOCK_TIMEOUT) as con:
            last = last_usage_dates(con)
    return _plans(settings, kind, today, last)


def backfill_orgs(plans: Sequence[OrgPlan]) -> list[str]:
    return [p.org.name for p in plans if p.backfill]


async def run_cycle(
    settings: Settings,
    kind: Kind = "full",
    *,
    clock: Clock,
    progress: Progress | None = None,
    stop_event: threading.Event | None = None,
    plans: Sequence[OrgPlan] | None = None,
    after_write: AfterWrite | None = None,
) -> CycleResult:
    """Collect every configured organization once and store the results.

    ``clock`` (naive UTC) decides the usage windows ("today") and stamps every fetch and
    run row; ``progress`` gets (done, planned) requests. Raises CycleAbandoned if
    ``stop_event`` is set while organizations are still fetching (then nothing is
    published and ``after_write`` is not called).

    ``after_write(con, at)`` runs once, after the last organization is committed and
    before the publish, on the live connection under the write lock; ``at`` is
    ``clock()`` read then, so every row the cycle wrote is at or before it. Commit what
    it stores in its own transaction. If it raises, its transaction is rolled back, one
    line is logged and the cycle's data is published anyway (the result is unchanged).
    """
    if plans is None:
        plans = prepare(settings, kind, clock().date())
    if not plans:  # still create and publish the database, as a cycle would
        return CycleResult(
            kind=kind, orgs=_write(settings, kind, (), clock, after_write=after_write)
        )
    return CycleResult(
        kind=kind,
        orgs=await _collect(plans, settings, kind, progress, stop_event, clock, after_write),
    )


def _blocking(func: Callable[P, Coroutine[Any, Any, R]]) -> Callable[P, R]:
    """``func`` run to completion on a fresh event loop in the calling thread."""

    @functools.wraps(func)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        return asyncio.run(func(*args, **kwargs))

    return run


# ``run_cycle`` with the same arguments, blocking (CLI, scheduler jobs).
run_cycle_sync = _blocking(run_cycle)
