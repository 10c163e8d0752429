"""Runs collection cycles on a clock (APScheduler 3.x) until SIGINT/SIGTERM.

A full cycle at start, then an organization snapshot every ``snapshot_minutes`` (GET only)
and a usage refresh every ``usage_minutes``. One worker thread runs the jobs, so they never
overlap (and never fight over the write lock); each job has at most one instance and missed
runs coalesce into one. A stop request abandons a cycle that is still fetching and lets one
that is writing finish, so no transaction is ever left half written. The scheduler holds
``<db>.scheduler.lock`` for its life: a second scheduler on the same database refuses.

The after-cycle hook (the alerts check, whose deliveries reach the outside) runs off the
collection path, in its own daemon thread: a cycle only asks for it, requests made while
it runs coalesce into one more run, so collections keep their schedule whatever a channel
does. On a stop the hook gets ``AFTER_CYCLE_STOP_GRACE_SECONDS`` to finish; one still
running after that (a delivery hanging until its deadline) is left behind, which a daemon
thread allows, so SIGINT/SIGTERM stop the scheduler within seconds in every state.

Public API:
    run_scheduler(settings, *, clock=system_clock, after_cycle=None, stop_event=None,
                  on_result=None) -> None
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler

from runway_costs.collector.cycle import (
    AfterWrite,
    CycleAbandoned,
    CycleResult,
    Kind,
    run_cycle_sync,
)
from runway_costs.collector.locks import scheduler_lock
from runway_costs.core.clock import Clock, system_clock
from runway_costs.core.config import Settings

log = logging.getLogger("runway_costs.collector.scheduler")

MIN_MISFIRE_GRACE_SECONDS = 30
TICK_SECONDS = 0.5  # how often the main loop checks for a stop and wakes the scheduler
AFTER_CYCLE_STOP_GRACE_SECONDS = 2.0  # how long a stop waits for a running hook
_HOOK_POLL_SECONDS = 0.05

# What runs after each completed cycle (the alerts check): the settings and the same clock.
AfterCycle = Callable[[Settings, Clock], None]


def _summary(result: CycleResult) -> str:
    ok = len(result.orgs) - len(result.failed)
    text = f"{result.kind} cycle: {ok}/{len(result.orgs)} organizations ok"
    if result.failed:
        text += "; " + "; ".join(r.error or r.org for r in result.failed)
    return text


def _guarded(what: str, func: Callable[..., None], *args: object) -> None:
    try:
        func(*args)
    except Exception as exc:
        log.error("%s failed: %s: %s", what, type(exc).__name__, exc)


class _AfterCycle:
    """The after-cycle hook's own daemon thread: runs it once per request, one at a time;
    requests made while it runs coalesce into one more run. Sleeps by polling (no timed
    waits, as the main loop)."""

    def __init__(self, hook: AfterCycle, settings: Settings, clock: Clock) -> None:
        self._hook = hook
        self._settings = settings
        self._clock = clock
        self._wanted = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="after-cycle", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def request(self) -> None:
        self._wanted.set()

    def _loop(self) -> None:
        while True:
            if self._wanted.is_set():
                self._wanted.clear()
                _guarded("after-cycle hook", self._hook, self._settings, self._clock)
            elif self._stop.is_set():
                return
            else:
                time.sleep(_HOOK_POLL_SECONDS)

    def stop(self, grace: float) -> None:
        """Let a running or requested hook finish within ``grace`` seconds, else leave it."""
        self._stop.set()
        end = time.monotonic() + grace
        while self._thread.is_alive() and time.monotonic() < end:
            time.sleep(_HOOK_POLL_SECONDS)
        if self._thread.is_alive():
            log.warning(
                "after-cycle hook still running after %g s (an alert channel hangs?): "
                "stopping without it",
                grace,
            )


class _Jobs:
    """The job bodies: run a cycle, report it, then ask for the after-cycle hook; never
    raise."""

    def __init__(
        self,
        settings: Settings,
        stop_event: threading.Event,
        after_cycle: _AfterCycle | None,
        on_result: Callable[[CycleResult], None] | None,
        clock: Clock,
        after_write: AfterWrite | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.after_write = after_write
        self.stop_event = stop_event
        self.after_cycle = after_cycle
        self.on_result = on_result

    def run(self, kind: Kind) -> CycleResult | None:
        if self.stop_event.is_set():
            return None
        try:
            result = run_cycle_sync(
                self.settings,
                kind,
                clock=self.clock,
                stop_event=self.stop_event,
                after_write=self.after_write,
            )
        except CycleAbandoned:
            log.info("%s cycle abandoned: stop requested while fetching", kind)
            return None
        except Exception as exc:  # a cycle error must not stop the scheduler
            log.error("%s cycle failed: %s: %s", kind, type(exc).__name__, exc)
            return None
        log.info("%s", _summary(result))
        if self.on_result is not None:
            _guarded("result reporter", self.on_result, result)
        if self.after_cycle is not None:
            self.after_cycle.request()  # runs in its own thread: never delays a collection
        return result


@contextmanager
def _stop_on_signals(stop_event: threading.Event) -> Iterator[None]:
    """SIGINT/SIGTERM set the stop event (only possible from the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {}

    def handler(signum: int, _frame: object) -> None:
        log.info("received %s: stopping", signal.Signals(signum).name)
        stop_event.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        previous[sig] = signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _build_scheduler(settings: Settings, jobs: _Jobs) -> BackgroundScheduler:
    cfg = settings.collection
    scheduler = BackgroundScheduler(
        executors={"default": ThreadPoolExecutor(max_workers=1)},
        job_defaults={"max_instances": 1, "coalesce": True},
        timezone="UTC",
    )
    for kind, minutes in (("snapshot", cfg.snapshot_minutes), ("usage", cfg.usage_minutes)):
        seconds = minutes * 60
        scheduler.add_job(
            jobs.run,
            "interval",
            args=[kind],
            seconds=seconds,
            id=f"{kind}-cycle",
            name=f"{kind} cycle",
            misfire_grace_time=max(MIN_MISFIRE_GRACE_SECONDS, int(seconds / 2)),
        )
    return scheduler


def run_scheduler(
    settings: Settings,
    *,
    clock: Clock = system_clock,
    after_cycle: AfterCycle | None = None,
    stop_event: threading.Event | None = None,
    on_result: Callable[[CycleResult], None] | None = None,
    after_write: AfterWrite | None = None,
) -> None:
    """Collect on a clock until ``stop_event`` is set (or SIGINT/SIGTERM arrives).

    Raises collector.locks.SchedulerAlreadyRunning if another scheduler holds the database.
    The scheduler is an edge: ``clock`` is the system clock unless a caller (a test, a
    replay) pins it. ``after_cycle(settings, clock)`` runs after each completed job, in its
    own thread (see the module doc); its exceptions are logged and swallowed.
    ``after_write(con, at)`` is each cycle's work done once on its data before it is
    published (``collector.cycle.run_cycle``; the CLI passes the stored outlooks' step),
    so the after-cycle hook already finds it.
    """
    stop_event = stop_event or threading.Event()
    with scheduler_lock(settings.db_path), _stop_on_signals(stop_event):
        hook = None if after_cycle is None else _AfterCycle(after_cycle, settings, clock)
        if hook is not None:
            hook.start()
        try:
            jobs = _Jobs(settings, stop_event, hook, on_result, clock, after_write)
            _run(settings, stop_event, jobs)
        finally:
            if hook is not None:
                hook.stop(AFTER_CYCLE_STOP_GRACE_SECONDS)


def _run(settings: Settings, stop_event: threading.Event, jobs: _Jobs) -> None:
    """The first full cycle, then the interval jobs until a stop."""
    jobs.run("full")
    if stop_event.is_set():
        return
    scheduler = _build_scheduler(settings, jobs)
    scheduler.start()
    log.info(
        "scheduler running: snapshot every %g min, usage every %g min",
        settings.collection.snapshot_minutes,
        settings.collection.usage_minutes,
    )
    try:
        while not stop_event.is_set():
            # Tick by sleeping and wake the scheduler ourselves rather than trusting its
            # timed wait alone: where timed waits misbehave (libfaketime shifting the
            # monotonic clock, as the suite's any-date runs do) jobs still run on time.
            time.sleep(TICK_SECONDS)
            scheduler.wakeup()
    finally:
        stop_event.set()
        scheduler.shutdown(wait=True)  # lets a writing job finish; fetches abandon
        log.info("scheduler stopped")
