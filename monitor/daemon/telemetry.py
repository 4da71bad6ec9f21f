"""The daemon's Prometheus counters and histograms, on a registry of this process's own.

No metric lives at module level: the Runtime builds one `Telemetry` and hands it to the
poller, the delivery and the scheduler, so tests can build as many runtimes (and web apps)
as they like without "duplicated timeseries" errors from a shared global registry.

Everything is counted in the daemon's main process: parser worker processes
(MONITOR_PARSE_PROCESSES) only hand results back, and the poller counts them when it stores
them. That keeps prometheus-client's multiprocess mode out of the picture.

Labels are bounded enumerations, every known value pre-created at 0, so a rate() over a
series that has not happened yet is 0 and not "no data". Nothing is labelled by feed or by
route: per-feed and per-route health is in the database, the API and the web pages.
"""

from __future__ import annotations

import platform
from collections.abc import Iterable
from datetime import datetime

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)
from sqlalchemy import Engine

from monitor import __version__

# The fetch_log.outcome values.
POLL_OUTCOMES = ("ok", "not_modified", "error", "held_back")
# Seconds; a fetch's total timeout is 30 s.
FETCH_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
TICK_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1.0, 2.5, 5.0, 10.0)
DELIVERY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# Each attempt counts once: sent, failed (retried later) or dead (failed for the last time).
DELIVERY_RESULTS = ("sent", "failed", "dead")
# ok; invalid: feeds.yaml was rejected (the last good one stays); error: it could not be
# applied (the database was away), and is tried again.
RELOAD_RESULTS = ("ok", "invalid", "error")
# The scheduler's job ids (monitor/daemon/scheduler.py) and how a run ended.
JOBS = ("poll", "deliver", "digests", "reload", "prune", "trim")
# elsewhere: a whole-database job skipped because another replica was running it.
JOB_RESULTS = ("ok", "error", "missed", "elsewhere")

# The error_kind words of intake (monitor/intake/fetch.py, netguard.py, inflate.py) and the
# pipeline, folded into eleven classes: `http_{code}` alone could make a series per status
# code. The exact kind of each feed is on the Sources page and in fetch_log.
ERROR_CLASSES = {
    "timeout": "timeout",
    "dns": "dns",
    "connect": "network",
    "network": "network",
    "protocol": "network",
    "not_found": "http_4xx",
    "rate_limited": "rate_limited",
    "unavailable": "http_5xx",
    "gone": "gone",
    "too_large": "too_large",
    "blocked_address": "blocked_address",
    "parse": "parse",
    "not_a_feed": "parse",
    "empty": "parse",
    "decode": "parse",
    "unsupported_encoding": "parse",
}
POLL_ERROR_KINDS = (
    "timeout", "dns", "network", "http_4xx", "http_5xx", "rate_limited", "gone",
    "too_large", "blocked_address", "parse", "other",
)  # fmt: skip


def error_class(kind: str | None) -> str:
    """The `kind` label of an error_kind: its class, `http_4xx`/`http_5xx`, or `other`
    (bad_url, redirect_loop, internal, and any word added later)."""
    if kind is None:
        return "other"
    if kind in ERROR_CLASSES:
        return ERROR_CLASSES[kind]
    code = kind.removeprefix("http_")
    if code != kind and code.isdigit():
        return "http_5xx" if code.startswith("5") else "http_4xx"
    return "other"


def new_registry(version: str = __version__) -> CollectorRegistry:
    """A registry with what every process exports: process, platform, GC and build info.

    `monitor serve` (the web alone) uses just this; the daemon adds its `Telemetry`.
    """
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    build = Gauge(
        "monitor_build_info",
        "Always 1; the labels say which monitor and Python this process runs.",
        ["version", "python"],
        registry=registry,
    )
    build.labels(version=version, python=platform.python_version()).set(1)
    return registry


def _precreate(metric: Counter | Histogram, label: str, values: Iterable[str]) -> None:
    for value in values:
        metric.labels(**{label: value})


class Telemetry:
    """The daemon's metrics; the stages call its methods, the web serves its registry."""

    def __init__(
        self, registry: CollectorRegistry | None = None, *, engine: Engine | None = None
    ) -> None:
        self.registry = registry if registry is not None else new_registry()
        # The daemon's engine: /metrics shows how many of its pooled connections are out.
        self.engine = engine
        r = self.registry
        self.polls = Counter(
            "monitor_polls_total", "Feed polls stored, by fetch_log outcome.", ["outcome"],
            registry=r,
        )  # fmt: skip
        self.poll_errors = Counter(
            "monitor_poll_errors_total", "Failed polls, by class of error kind.", ["kind"],
            registry=r,
        )  # fmt: skip
        self.fetch_duration = Histogram(
            "monitor_fetch_duration_seconds",
            "Time to fetch and parse one feed (held-back feeds made no request).",
            ["outcome"],
            buckets=FETCH_BUCKETS,
            registry=r,
        )
        self.response_bytes = Counter(
            "monitor_fetch_response_bytes_total", "Feed bodies read, in bytes.", registry=r
        )
        self.items_stored = Counter("monitor_items_stored_total", "New items stored.", registry=r)
        self.items_flagged = Counter(
            "monitor_items_flagged_total",
            "New items the classifier flagged as a measure.",
            registry=r,
        )
        self.last_poll_success = Gauge(
            "monitor_last_poll_success_timestamp_seconds",
            "When a feed last answered with a feed or a 304 (0: not yet in this process).",
            registry=r,
        )
        self.tick_duration = Histogram(
            "monitor_poll_tick_duration_seconds",
            "Duration of a scheduler poll tick.",
            buckets=TICK_BUCKETS,
            registry=r,
        )
        self.deliveries = Counter(
            "monitor_alert_deliveries_total",
            "Alert and digest send attempts, by result.",
            ["result"],
            registry=r,
        )
        self.delivery_duration = Histogram(
            "monitor_alert_delivery_duration_seconds",
            "Time one send to an alert target took.",
            buckets=DELIVERY_BUCKETS,
            registry=r,
        )
        self.config_reloads = Counter(
            "monitor_config_reloads_total",
            "Reloads of an edited feeds.yaml, by result.",
            ["result"],
            registry=r,
        )
        self.last_reload_success = Gauge(
            "monitor_config_last_reload_success_timestamp_seconds",
            "When an edited feeds.yaml was last applied (0: not in this process).",
            registry=r,
        )
        self.job_runs = Counter(
            "monitor_scheduler_job_runs_total",
            "Scheduler job runs, by job and result.",
            ["job", "result"],
            registry=r,
        )
        self._last_success_s = 0.0
        _precreate(self.polls, "outcome", POLL_OUTCOMES)
        _precreate(self.poll_errors, "kind", POLL_ERROR_KINDS)
        _precreate(self.fetch_duration, "outcome", ("ok", "not_modified", "error"))
        _precreate(self.deliveries, "result", DELIVERY_RESULTS)
        _precreate(self.config_reloads, "result", RELOAD_RESULTS)
        for job in JOBS:
            for result in JOB_RESULTS:
                self.job_runs.labels(job=job, result=result)

    def poll_finished(
        self,
        outcome: str,
        *,
        error_kind: str | None,
        fetch_seconds: float,
        body_bytes: int,
        new_items: int,
        flagged: int,
        finished_at: datetime,
    ) -> None:
        """One feed's poll was stored (called by the poller, in the storing thread)."""
        self.polls.labels(outcome=outcome).inc()
        if outcome == "held_back":
            return  # no request was made
        self.fetch_duration.labels(outcome=outcome).observe(fetch_seconds)
        self.response_bytes.inc(body_bytes)
        self.items_stored.inc(new_items)
        self.items_flagged.inc(flagged)
        if outcome == "error":
            self.poll_errors.labels(kind=error_class(error_kind)).inc()
        else:
            # Feeds of one batch finish out of order: the gauge only moves forward.
            self._last_success_s = max(self._last_success_s, finished_at.timestamp())
            self.last_poll_success.set(self._last_success_s)

    def tick_took(self, seconds: float) -> None:
        self.tick_duration.observe(seconds)

    # The alerts package's DeliveryMeter (it cannot import the daemon, so it names a protocol).
    def delivery_result(self, result: str) -> None:
        if result in DELIVERY_RESULTS:
            self.deliveries.labels(result=result).inc()

    def delivery_seconds(self, seconds: float) -> None:
        self.delivery_duration.observe(seconds)

    def config_reloaded(self, result: str, at: datetime | None = None) -> None:
        self.config_reloads.labels(result=result).inc()
        if result == "ok" and at is not None:
            self.last_reload_success.set(at.timestamp())

    def job_ran(self, job: str, result: str) -> None:
        """A scheduler job run ended; a job id outside JOBS is not counted (no new series)."""
        if job in JOBS and result in JOB_RESULTS:
            self.job_runs.labels(job=job, result=result).inc()
