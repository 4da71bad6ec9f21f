"""The outbox sender: pending rows go out through a Notifier, digests at their scheduled time.

Guarantee: a row is leased ("sending") in its own transaction before the send and marked
"sent" right after. A crash between the send and the mark re-sends that one row after the
lease expires, so delivery is at-least-once per row, and the unique (route, dedup_key) of
the outbox makes the row itself exist once per (route, event, kind). A send (or digest) that
went out while the database could not take the mark is kept in memory and written down
before anything more goes out, so a database blip does not send it twice.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import or_, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from monitor.alerts.digest_delivery import DigestResult, DigestSender, with_mark_retries
from monitor.alerts.markup import RenderedAlert, format_for_url
from monitor.alerts.notify import Notifier
from monitor.alerts.outbox import event_source_count, payload_to_message
from monitor.alerts.render import render
from monitor.alerts.routing import RouteTarget
from monitor.domain import AlertMessage
from monitor.errors import NotifyError
from monitor.store import repo
from monitor.store.models import AlertRow

logger = logging.getLogger(__name__)

MAX_BACKOFF = timedelta(hours=1)
# Rows looked at per claim: another process may lease the first ones first.
CLAIM_CANDIDATES = 5


class DeliveryMeter(Protocol):
    """Where delivery results are counted (the daemon's Telemetry; this layer cannot
    import it, hence the protocol)."""

    def delivery_result(self, result: str) -> None:
        """One send attempt was recorded: sent, failed or dead."""

    def delivery_seconds(self, seconds: float) -> None:
        """One send to a target took this long."""


class NoMeter:
    """Counts nothing: delivery built without the daemon's telemetry (tests, one-off CLIs)."""

    def delivery_result(self, result: str) -> None:
        pass

    def delivery_seconds(self, seconds: float) -> None:
        pass


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    """What one delivery pass did."""

    sent: int = 0
    failed: int = 0
    dead: int = 0


class Delivery(DigestSender):
    """Sends what the outbox holds; safe to run from several processes at once."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        targets: Mapping[str, RouteTarget],
        notifier_for: Callable[[RouteTarget], Notifier],
        now: Callable[[], datetime],
        *,
        max_attempts: int = 8,
        lease: timedelta = timedelta(seconds=60),
        base_backoff: timedelta = timedelta(seconds=30),
        batch: int = 50,
        meter: DeliveryMeter | None = None,
    ) -> None:
        self.sessions = sessions
        self.meter: DeliveryMeter = meter if meter is not None else NoMeter()
        self.targets = dict(targets)
        self.notifier_for = notifier_for
        self.now = now
        self.max_attempts = max_attempts
        self.lease = lease
        self.base_backoff = base_backoff
        self.batch = batch
        # Rows sent whose result the database did not take yet: row id -> error (None: sent).
        self._unrecorded: dict[int, str | None] = {}
        # The same for digests, per route: its rows would otherwise go out again next time.
        self._unrecorded_digests: dict[str, DigestResult] = {}

    def deliver_due(self, stop: Callable[[], bool] = lambda: False) -> DeliveryReport:
        """Send every pending alert that is due; failures are retried later with backoff.

        A route whose send fails is left alone for the rest of the pass, so one dead target
        does not hold up the others for a timeout per row.
        """
        if not self._record_unrecorded():
            return DeliveryReport()  # the database is still away: send nothing new meanwhile
        sent = failed = dead = 0
        failing: set[str] = set()
        for _ in range(self.batch):
            # One row leased at a time: a crash strands at most the row being sent.
            row_id = None if stop() else self._claim_next(skip_routes=failing)
            if row_id is None:
                break
            outcome, route = self._send_one(row_id)
            sent += outcome == "sent"
            failed += outcome == "failed"
            dead += outcome == "dead"
            if outcome == "unrecorded":
                break  # the database is away: nothing more goes out until this is written
            if outcome in ("failed", "dead") and route is not None:
                failing.add(route)
        return DeliveryReport(sent=sent, failed=failed, dead=dead)

    def close(self) -> None:
        """On the way out: write down what went out unrecorded, saying first what it is.

        Said before the database is tried, since the database being away is why they are
        unrecorded, and the stop deadline may end the process while it is being tried: rows
        that stay unmarked are still leased ("sending") and go out once more after the lease.
        """
        went_out = sorted(row_id for row_id, error in self._unrecorded.items() if error is None)
        digests = sorted(
            route
            for route, result in self._unrecorded_digests.items()
            if result.error is None and result.ids
        )
        if went_out or digests:
            logger.error(
                "stopping with sends the database has not recorded: alerts %s and the digests "
                "of routes %s went out; unless written down now, they go out again",
                went_out or "-", digests or "-",
            )  # fmt: skip
        if self._record_unrecorded():
            for route in list(self._unrecorded_digests):
                self._digest_recorded(route)
        if not (self._unrecorded or self._unrecorded_digests) and (went_out or digests):
            logger.info("the unrecorded sends are written down now")

    def _record_unrecorded(self) -> bool:
        """Write down sends whose result the database could not take; False while it cannot."""
        for row_id, error in list(self._unrecorded.items()):
            try:
                self._record_and_count(row_id, error)
            except SQLAlchemyError as exc:
                logger.warning("still cannot record delivery of alert %d: %s", row_id, exc)
                return False
            del self._unrecorded[row_id]
        return True

    def _claim_next(self, skip_routes: set[str] | None = None) -> int | None:
        """Lease the next due row; None when nothing is due.

        The lease is a conditional UPDATE that re-checks the row is still due: on SQLite the
        SELECT before it takes no lock, so another process may have leased the same row in
        between, and only the UPDATE that still finds it due wins (row count 1).
        """
        now = self.now()
        due = or_(
            (AlertRow.status == "pending") & (AlertRow.due_at <= now),
            (AlertRow.status == "sending") & (AlertRow.lease_until < now),
        )
        with self.sessions.begin() as session:
            routes = [route for route in self.targets if route not in (skip_routes or ())]
            query = (
                select(AlertRow.id)
                .where(AlertRow.route.in_(routes))
                .where(due)
                .order_by(AlertRow.due_at, AlertRow.id)
            )
            if session.get_bind().dialect.name == "postgresql":
                # The row lock is the claim there; others skip the one row locked.
                query = query.limit(1).with_for_update(skip_locked=True)
            else:
                query = query.limit(CLAIM_CANDIDATES)
            for row_id in session.scalars(query).all():
                lease = (
                    update(AlertRow)
                    .where(AlertRow.id == row_id, due)
                    .values(status="sending", lease_until=now + self.lease)
                )
                if session.connection().execute(lease).rowcount == 1:
                    return row_id
        return None

    def _send_one(self, row_id: int) -> tuple[str, str | None]:
        """Send one leased row: (outcome, route)."""
        with self.sessions.begin() as session:
            row = session.get(AlertRow, row_id)
            if row is None or row.status != "sending":
                return "skipped", None
            route = row.route
            target = self.targets.get(route)
            if target is None:
                # The route went away in a config reload after the claim: the row waits, as
                # every pending row of a removed route does, should the route come back.
                row.status, row.lease_until = "pending", None
                return "skipped", route
            sources = None
            if row.event_id is not None:
                sources = event_source_count(session, row.event_id)
            payload = row.payload
        try:
            message = payload_to_message(payload)
            if sources is not None:
                message = _with_sources(message, sources)
            fmt = format_for_url(target.url, target.body_format)
            rendered = render(message, fmt, now=self.now())
        except (KeyError, TypeError, ValueError) as exc:
            # A row that cannot be rendered fails like a send, so it ends as a dead letter.
            error: str | None = f"cannot render this alert: {type(exc).__name__}: {exc}"[:300]
        else:
            error = self._send(target, rendered)
        # The message is out (or not): record that even if the database blips right now,
        # since an unrecorded success is the one way a message can go out twice.
        outcome = with_mark_retries(
            f"delivery of alert {row_id}", lambda: self._record_and_count(row_id, error)
        )
        if outcome is None:
            # Kept in memory and written before anything else is sent.
            self._unrecorded[row_id] = error
            return "unrecorded", route
        return outcome, route

    def _record_and_count(self, row_id: int, error: str | None) -> str:
        """Record a send's result, then count it: only once the database took it, so a
        mark retried through a blip is counted once."""
        result = self._record_result(row_id, error)
        self._count_delivery(result)
        return result

    def _record_result(self, row_id: int, error: str | None) -> str:
        with self.sessions.begin() as session:
            row = session.get(AlertRow, row_id)
            if row is None:
                return "skipped"
            row.attempts += 1
            row.lease_until = None
            if error is None:
                row.status, row.sent_at, row.last_error = "sent", self.now(), None
                logger.info("alert sent route=%s kind=%s alert_id=%d", row.route, row.kind, row.id)
                return "sent"
            row.last_error = error
            if row.attempts >= self.max_attempts:
                row.status = "dead"
                logger.error("alert dead route=%s alert_id=%d: %s", row.route, row.id, error)
                return "dead"
            row.status = "pending"
            row.due_at = self.now() + self._backoff(row.attempts)
            logger.warning(
                "alert failed route=%s alert_id=%d attempt=%d: %s",
                row.route, row.id, row.attempts, error,
            )  # fmt: skip
            return "failed"

    def _send(self, target: RouteTarget, rendered: RenderedAlert) -> str | None:
        started = time.monotonic()
        try:
            self.notifier_for(target).send(target.url, rendered)
        except NotifyError as exc:
            return str(exc)[:500]
        except Exception as exc:  # noqa: BLE001 - a target's surprise must not stop the others
            logger.exception("unexpected notifier failure route=%s", target.rules.name)
            return type(exc).__name__
        finally:
            self.meter.delivery_seconds(time.monotonic() - started)
        return None

    def _count_delivery(self, result: str) -> None:
        self.meter.delivery_result(result)

    def _backoff(self, attempts: int) -> timedelta:
        delay: timedelta = self.base_backoff * (2 ** min(attempts - 1, 12))
        return min(delay, MAX_BACKOFF)


def _with_sources(message: AlertMessage, sources: int) -> AlertMessage:
    return replace(message, other_sources=max(sources - 1, message.other_sources))


def retry_dead(sessions: sessionmaker[Session], now: datetime, route: str | None = None) -> int:
    """Put dead-lettered alerts back in the queue (`monitor alerts retry`)."""
    with sessions.begin() as session:
        return repo.retry_dead_alerts(session, now, route=route)
