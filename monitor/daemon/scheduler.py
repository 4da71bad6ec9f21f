"""The daemon: APScheduler wiring only. Each job is short; the work lives in the stages.

Jobs (each max_instances=1 and coalesced, so a slow run never piles up behind itself):
poll tick (lease due feeds, store finished ones), alert delivery, digests, config reload,
pruning, the silence signal (a country's sources going quiet together), measurement checks
of events (corroborate), and handing freed heap memory back to the system. Delivery runs in
its own job thread, so polling never waits on a slow target.

Replicas (several daemons on one PostgreSQL database): poll and deliver split the work row
by row through leases; digests, corroborate, silence and prune work on the whole database
and run in one replica at a time (monitor/store/locks.py says how and why).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from types import FrameType
from typing import Any

from apscheduler.events import EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy.exc import SQLAlchemyError

from monitor.config.schema import config_fingerprint, load_config
from monitor.daemon.bootstrap import Runtime, release_free_memory, secrets_of
from monitor.daemon.logsetup import SecretFilter
from monitor.daemon.status import DaemonState, JobInfo, ReloadStatus
from monitor.errors import ConfigError
from monitor.store import locks
from monitor.store.retention import prune

logger = logging.getLogger(__name__)

TICK_BUSY_SHARE = 0.7
# Feeds are polled every few minutes at best: looking for silent countries more often than
# this would only re-read the same states.
SILENCE_SECONDS = 60

# A stop must end within 10 s (container runtimes kill at 10 s). Jobs finish their current
# transaction first; one stuck in a slow send or a database wait past this deadline is cut
# short: every write is a transaction, so the database rolls back whatever was unfinished.
STOP_DEADLINE_S = 8.0


class Daemon:
    """Runs the jobs until SIGTERM/SIGINT, then stops within seconds without partial writes."""

    def __init__(
        self,
        runtime: Runtime,
        secret_filter: SecretFilter | None = None,
        *,
        stop_deadline_s: float = STOP_DEADLINE_S,
        exit_now: Callable[[int], None] = os._exit,
    ) -> None:
        self.runtime = runtime
        self.secret_filter = secret_filter
        self.stop_requested = threading.Event()
        self.stop_deadline_s = stop_deadline_s
        self._exit_now = exit_now
        self._fingerprint = self._read_fingerprint()
        self.last_tick_at: datetime | None = None
        self.last_reload: ReloadStatus | None = None
        self._scheduler = BackgroundScheduler(
            timezone="UTC",
            job_defaults={"max_instances": 1, "coalesce": True, "misfire_grace_time": 30},
            executors={"default": {"type": "threadpool", "max_workers": 6}},
        )

    def _read_fingerprint(self) -> str | None:
        try:
            return config_fingerprint(self.runtime.settings.config_path)
        except (OSError, ConfigError):
            # Missing for a moment (editors and config mounts replace the file): look again
            # at the next run.
            return None

    def start(self) -> None:
        """Register the jobs and start them (returns at once)."""
        tick = self.runtime.settings.tick_seconds
        # Polling and delivery start at once: an interval job would first run a tick later.
        self._add(self._poll_tick, tick, "poll", now=True)
        self._add(self._deliver, tick, "deliver", now=True)
        # Whole-database jobs run in one replica at a time (the others skip that run).
        self._add(self._digests, 30, "digests", singleton=True)
        self._add(self._reload_if_changed, self.runtime.settings.reload_seconds, "reload")
        self._add(self._corroborate, 60, "corroborate", singleton=True)
        self._add(self._prune, 3600, "prune", singleton=True)
        self._add(self.runtime.watch_silence, SILENCE_SECONDS, "silence", singleton=True)
        self._add(release_free_memory, 60, "trim")
        self._scheduler.add_listener(self._missed, EVENT_JOB_MISSED)
        self._scheduler.start()
        logger.info(
            "monitor running: %d feeds, %d alert routes",
            len(self.runtime.config.feeds),
            len(self.runtime.targets),
        )

    def _add(
        self,
        job: Callable[[], Any],
        seconds: float,
        name: str,
        now: bool = False,
        singleton: bool = False,
    ) -> None:
        first = {"next_run_time": datetime.now(UTC)} if now else {}
        self._scheduler.add_job(
            self._guarded(job, name, singleton), "interval", seconds=seconds, id=name, **first
        )

    def _guarded(
        self, job: Callable[[], Any], name: str, singleton: bool = False
    ) -> Callable[[], None]:
        def run() -> None:
            if self.stop_requested.is_set():
                return
            result = "error"
            try:
                if singleton:
                    with locks.singleton(self.runtime.engine, name) as mine:
                        if not mine:
                            result = "elsewhere"  # another replica is running it now
                            return
                        job()
                else:
                    job()
                result = "ok"
            except SQLAlchemyError as exc:
                # The database may be restarting; the next run reconnects (pool_pre_ping).
                logger.error("job %s: database error: %s", name, str(exc).splitlines()[0][:300])
            except Exception:  # noqa: BLE001 - a job's bug must not kill the daemon
                logger.exception("job %s failed", name)
            finally:
                self.runtime.telemetry.job_ran(name, result)

        return run

    def _missed(self, event: JobExecutionEvent) -> None:
        self.runtime.telemetry.job_ran(event.job_id, "missed")

    def state(self) -> DaemonState:
        """For health checks and the system page (read from the web thread)."""
        jobs = tuple(
            JobInfo(name=job.id, next_run_at=job.next_run_time)
            for job in self._scheduler.get_jobs()
        )
        return DaemonState(
            scheduler_running=self._scheduler.running and not self.stop_requested.is_set(),
            last_tick_at=self.last_tick_at,
            tick_seconds=self.runtime.settings.tick_seconds,
            jobs=jobs,
            reload=self.last_reload,
        )

    def _poll_tick(self) -> None:
        self.last_tick_at = self.runtime.clock.now()
        started = time.monotonic()
        # Busy for most of a tick: feeds that finish are stored and replaced at once, so a
        # large due list is worked through at the workers' pace, not 2 × workers per tick.
        # Returning before the next tick is due keeps APScheduler from skipping (and logging) it.
        report = self.runtime.poller.tick(
            busy_for=TICK_BUSY_SHARE * self.runtime.settings.tick_seconds,
            stop=self.stop_requested.is_set,
        )
        self.runtime.telemetry.tick_took(time.monotonic() - started)
        if report.polled or report.held_back:
            logger.info(
                "cycle polled=%d failed=%d held_back=%d new=%d flagged=%d alerts=%d "
                "in_flight=%d",
                report.polled, report.failed, report.held_back, report.new_items,
                report.flagged, report.alerts_queued, self.runtime.poller.in_flight(),
            )  # fmt: skip

    def _deliver(self) -> None:
        self.runtime.delivery.deliver_due(stop=self.stop_requested.is_set)

    def _corroborate(self) -> None:
        # Its own job and HTTP client: measurement services never delay polling or alerts.
        self.runtime.corroborator.run(self.runtime.sessions, stop=self.stop_requested.is_set)

    def _digests(self) -> None:
        self.runtime.delivery.send_digests()

    def _reload_if_changed(self) -> None:
        fingerprint = self._read_fingerprint()
        if fingerprint is None or fingerprint == self._fingerprint:
            return
        previous, self._fingerprint = self._fingerprint, fingerprint
        path = self.runtime.settings.config_path
        try:
            config = load_config(path, self.runtime.env)
        except ConfigError as exc:
            # Reported once per edit: the fingerprint stays, so it is not re-read every run.
            logger.error("config edit rejected, keeping the last good one: %s", exc)
            self.last_reload = ReloadStatus(self.runtime.clock.now(), ok=False, message=str(exc))
            self.runtime.telemetry.config_reloaded("invalid")
            return
        if self.secret_filter is not None:
            self.secret_filter.update(secrets_of(config, self.runtime.env))
        try:
            self.runtime.apply_config(config)
        except Exception:
            # The database was away while the feeds table was synced: try the edit again at
            # the next run instead of leaving it half applied.
            self._fingerprint = previous
            self.runtime.telemetry.config_reloaded("error")
            raise
        logger.info("config reloaded from %s: %d feeds", path, len(config.feeds))
        now = self.runtime.clock.now()
        self.last_reload = ReloadStatus(now, ok=True, message=f"{len(config.feeds)} feeds")
        self.runtime.telemetry.config_reloaded("ok", at=now)

    def _prune(self) -> None:
        # In short batches within a time budget (monitor.store.retention): polls commit
        # between them; what is left over waits for the next run.
        report = prune(
            self.runtime.sessions,
            self.runtime.config.retention,
            self.runtime.clock.now(),
            stop=self.stop_requested.is_set,
        )
        if report.total or not report.finished:
            logger.info(
                "pruned %s in %d batches, %.1f s%s",
                " ".join(f"{name}={count}" for name, count in report.deleted.items()),
                report.batches,
                report.seconds,
                "" if report.finished else " (time budget spent, more at the next run)",
            )

    def install_signal_handlers(self) -> None:
        """SIGTERM and SIGINT ask for a stop; the main thread then shuts down cleanly."""

        def ask_stop(signum: int, _frame: FrameType | None) -> None:
            if self.stop_requested.is_set():
                # A second signal: the operator will not wait for the jobs to finish.
                self._exit_now(1)
                return
            logger.info("signal %d received, stopping", signum)
            self.stop_requested.set()

        signal.signal(signal.SIGTERM, ask_stop)
        signal.signal(signal.SIGINT, ask_stop)

    def run_until_stopped(self, before_stop: Callable[[], None] | None = None) -> None:
        """Block until a stop is requested, then stop everything (`before_stop` first)."""
        self.start()
        while not self.stop_requested.wait(1.0):
            pass
        self.stop(before_stop)

    def stop(self, before_stop: Callable[[], None] | None = None) -> None:
        """Let running job transactions finish, give back feed leases, close connections."""
        self.stop_requested.set()
        watchdog = threading.Timer(self.stop_deadline_s, self._stop_overdue)
        watchdog.daemon = True
        watchdog.start()
        if before_stop is not None:
            before_stop()
        self._scheduler.shutdown(wait=True)
        self.runtime.poller.release()
        self.runtime.close()
        watchdog.cancel()
        logger.info("monitor stopped")

    def _stop_overdue(self) -> None:
        logger.error(
            "stop took more than %.0f s (a job is still busy); exiting now, the database "
            "rolls back what was not committed",
            self.stop_deadline_s,
        )
        for handler in logging.getLogger().handlers:
            handler.flush()
        sys.stderr.flush()
        self._exit_now(1)
