"""Prometheus `/metrics`: the daemon's counters, database gauges and the web's HTTP metrics.

One registry per process. Under `monitor run` it is the daemon's (`Runtime.telemetry`), so a
scrape sees polls and deliveries; under `monitor serve` the web makes a bare one (process and
build info) and adds the same two things to it as the daemon's:

- `DatabaseCollector`: gauges read from the database at most every `metrics_refresh_s`
  seconds (MONITOR_METRICS_REFRESH). They are cluster-wide: every replica reports the same
  value, so dashboards take `max()` of them, and `sum()` of the per-process counters.
- `HttpMetrics`: requests by route *template* (`/events/{event_id}`), never the raw path,
  which would make a series per event id someone typed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Engine, func, or_, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from monitor.daemon.telemetry import new_registry
from monitor.store.models import AlertRow, EventRow, FeedRow
from monitor.store.tokens import TokenInfo
from monitor.web.auth import api_user
from monitor.web.context import WebContext

logger = logging.getLogger(__name__)

FEED_STATES = ("ok", "failing", "disabled", "gone")
EVENT_STAGES = ("proposed", "enacted", "enforced", "lifted")
# Outbox rows still to go out; `retrying` is a pending row that failed before. Sent rows are
# history (monitor_alert_deliveries_total counts them going out), not a queue.
OUTBOX_STATUSES = ("pending", "retrying", "sending", "digest", "dead")
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
# The route label of a request no route matched (a 404 scan must not add series).
UNMATCHED_ROUTE = "other"

router = APIRouter()


@router.get("/metrics", include_in_schema=False)
def metrics(
    request: Request, _user: Annotated[TokenInfo, Depends(api_user("metrics"))]
) -> Response:
    """The Prometheus text format, for a token with the `metrics` scope."""
    registry: CollectorRegistry = request.app.state.metrics_registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_PLAIN_0_0_4)


def install(app: FastAPI, context: WebContext) -> None:
    """Register the app's metrics registry, its database collector and HTTP middleware."""
    telemetry = context.telemetry
    registry = telemetry.registry if telemetry is not None else new_registry(context.version)
    engines = {"web": context.sessions.kw.get("bind")}
    if telemetry is not None and telemetry.engine is not None:
        engines["daemon"] = telemetry.engine
    collector = DatabaseCollector(
        context.sessions,
        context.clock.now,
        refresh_s=context.metrics_refresh_s,
        engines={name: e for name, e in engines.items() if isinstance(e, Engine)},
    )
    registry.register(collector)
    app.add_middleware(HttpMetricsMiddleware, http=HttpMetrics(registry))
    app.state.metrics_registry = registry
    context.extras["metrics_registry"] = registry
    context.extras["metrics_collector"] = collector


# --- database gauges ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DatabaseSnapshot:
    """What the database gauges say, read in one go."""

    feeds: dict[str, int]  # by FEED_STATES
    feeds_due: int
    events: dict[str, int]  # by EVENT_STAGES
    outbox: dict[str, int]  # by OUTBOX_STATUSES
    oldest_pending: datetime | None


def read_snapshot(session: Session, now: datetime) -> DatabaseSnapshot:
    """Five grouped counts over indexed columns; cheap enough once a minute at any size."""
    return DatabaseSnapshot(
        feeds=_feed_states(session),
        feeds_due=_feeds_due(session, now),
        events=_events_by_stage(session),
        outbox=_outbox_by_status(session),
        oldest_pending=session.scalar(
            select(func.min(AlertRow.created_at)).where(AlertRow.status.in_(("pending", "sending")))
        ),
    )


def _feed_states(session: Session) -> dict[str, int]:
    counts = dict.fromkeys(FEED_STATES, 0)
    failing = FeedRow.consecutive_failures > 0
    query = select(FeedRow.gone, FeedRow.enabled, failing, func.count()).group_by(
        FeedRow.gone, FeedRow.enabled, failing
    )
    for gone, enabled, is_failing, count in session.execute(query):
        # A gone feed is gone whatever else; a disabled one is not polled, so not failing.
        state = "gone" if gone else "disabled" if not enabled else "failing" if is_failing else "ok"
        counts[state] += count
    return counts


def _feeds_due(session: Session, now: datetime) -> int:
    """The poll queue's depth: due, and not leased by a poller already."""
    query = select(func.count()).where(
        FeedRow.enabled.is_(True),
        FeedRow.gone.is_(False),
        FeedRow.next_poll_at <= now,
        or_(FeedRow.lease_until.is_(None), FeedRow.lease_until < now),
    )
    return session.scalar(query) or 0


def _events_by_stage(session: Session) -> dict[str, int]:
    """Events analysts have not dismissed, by stage."""
    counts = dict.fromkeys(EVENT_STAGES, 0)
    query = (
        select(EventRow.stage, func.count())
        .where(EventRow.status != "dismissed")
        .group_by(EventRow.stage)
    )
    for stage, count in session.execute(query):
        if stage in counts:
            counts[stage] += count
    return counts


def _outbox_by_status(session: Session) -> dict[str, int]:
    counts = dict.fromkeys(OUTBOX_STATUSES, 0)
    retried = AlertRow.attempts > 0
    query = (
        select(AlertRow.status, retried, func.count())
        .where(AlertRow.status != "sent")
        .group_by(AlertRow.status, retried)
    )
    for status, was_retried, count in session.execute(query):
        label = "retrying" if status == "pending" and was_retried else status
        if label in counts:
            counts[label] += count
    return counts


class DatabaseCollector(Collector):
    """The database gauges, cached for `refresh_s` seconds; a failed read is counted and
    leaves them out of that scrape, and /metrics still answers with everything else."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        now: Callable[[], datetime],
        *,
        refresh_s: float,
        engines: Mapping[str, Engine],
    ) -> None:
        self.sessions = sessions
        self.now = now
        self.refresh_s = refresh_s
        self.engines = dict(engines)
        self.errors = 0
        self.last_duration_s = 0.0
        self._snapshot: DatabaseSnapshot | None = None
        self._read_at: float | None = None  # time.monotonic() of the last read
        self._lock = threading.Lock()  # scrapes come in on several web threads

    def describe(self) -> Iterator[Metric]:
        # Without this the registry would call collect() (a database read) at registration.
        return iter(())

    def collect(self) -> Iterator[Metric]:
        snapshot = self._current()
        if snapshot is not None:
            yield from _snapshot_families(snapshot)
        connections = GaugeMetricFamily(
            "monitor_db_connections_in_use",
            "Pooled database connections checked out, by engine (the daemon's, the web's).",
            labels=["engine"],
        )
        for name, engine in self.engines.items():
            checked_out = getattr(engine.pool, "checkedout", None)
            if checked_out is not None:
                connections.add_metric([name], float(checked_out()))
        yield connections
        yield GaugeMetricFamily(
            "monitor_metrics_collect_duration_seconds",
            "How long the last read of the database gauges took.",
            value=self.last_duration_s,
        )
        yield CounterMetricFamily(
            "monitor_metrics_collect_errors",
            "Reads of the database gauges that failed.",
            value=self.errors,
        )

    def _current(self) -> DatabaseSnapshot | None:
        with self._lock:
            fresh = self._read_at is not None and time.monotonic() - self._read_at < self.refresh_s
            if fresh:
                return self._snapshot
            started = time.monotonic()
            try:
                with self.sessions() as session:
                    self._snapshot = read_snapshot(session, self.now())
            except SQLAlchemyError as exc:
                self.errors += 1
                self._snapshot = None
                logger.warning("metrics: cannot read the database gauges: %s", _first_line(exc))
            self.last_duration_s = time.monotonic() - started
            self._read_at = time.monotonic()  # a failure waits for the next refresh too
            return self._snapshot


def _snapshot_families(snapshot: DatabaseSnapshot) -> Iterator[Metric]:
    yield _labelled("monitor_feeds", "Configured feeds, by state.", "state", snapshot.feeds)
    yield GaugeMetricFamily(
        "monitor_feeds_due",
        "Feeds due for a poll and not leased by a poller (the poll queue).",
        value=snapshot.feeds_due,
    )
    yield _labelled(
        "monitor_events", "Events not dismissed by analysts, by stage.", "stage", snapshot.events
    )
    yield _labelled(
        "monitor_alerts_outbox", "Alerts waiting in the outbox, by status.", "status",
        snapshot.outbox,
    )  # fmt: skip
    oldest = snapshot.oldest_pending
    yield GaugeMetricFamily(
        "monitor_alert_oldest_pending_timestamp_seconds",
        "When the oldest alert still to be sent was queued (0: none is waiting).",
        value=oldest.timestamp() if oldest is not None else 0.0,
    )


def _labelled(name: str, documentation: str, label: str, counts: Mapping[str, int]) -> Metric:
    family = GaugeMetricFamily(name, documentation, labels=[label])
    for value, count in counts.items():
        family.add_metric([value], count)
    return family


def _first_line(exc: Exception) -> str:
    return str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__


# --- HTTP metrics ------------------------------------------------------------------------


class HttpMetrics:
    """Requests answered by this web app, by route template, method and status class."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "monitor_http_requests_total",
            "HTTP requests answered, by route template, method and status class (2xx...).",
            ["route", "method", "code"],
            registry=registry,
        )
        self.duration = Histogram(
            "monitor_http_request_duration_seconds",
            "Time to answer an HTTP request, by route template.",
            ["route"],
            buckets=HTTP_BUCKETS,
            registry=registry,
        )

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        self.requests.labels(route=route, method=method, code=f"{status // 100}xx").inc()
        self.duration.labels(route=route).observe(seconds)


# HTTP methods outside these (a scanner's PROPFIND) share one label value.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def route_template(scope: Scope) -> str:
    """The matched route's path template (set by the router), or "other" when none matched."""
    route: Any = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) and path else UNMATCHED_ROUTE


class HttpMetricsMiddleware:
    """Plain ASGI (not BaseHTTPMiddleware): it only watches the status go by."""

    def __init__(self, app: ASGIApp, http: HttpMetrics) -> None:
        self.app = app
        self.http = http

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets when the app raises before answering

        async def watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            method = scope["method"] if scope["method"] in KNOWN_METHODS else "other"
            self.http.observe(route_template(scope), method, status, time.perf_counter() - started)
