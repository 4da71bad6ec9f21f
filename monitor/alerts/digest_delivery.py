"""Digests on their schedule: each digest route's collected alerts in one message when its
cron time comes, recorded as one send (and retried as one), each event listed once with its
stage now. The sending half of `Delivery`, which inherits it.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from monitor.alerts.digest import EventNow, collapse_by_event, render_digest
from monitor.alerts.markup import RenderedAlert, format_for_url
from monitor.alerts.outbox import payload_to_message
from monitor.alerts.routing import RouteTarget, next_digest_time
from monitor.store.models import AlertRow, EventRow, RouteStateRow

logger = logging.getLogger(__name__)

MARK_ATTEMPTS = 5
MARK_RETRY_S = 1.0


@dataclass(frozen=True, slots=True)
class DigestResult:
    """A digest's send: its route, its rows, the error (None: sent) and when it was sent."""

    target: RouteTarget
    ids: list[int]
    error: str | None
    sent_at: datetime


class DigestSender:
    """Sends digests; `Delivery` provides the sessions, the targets and the send itself."""

    sessions: sessionmaker[Session]
    targets: dict[str, RouteTarget]
    now: Callable[[], datetime]
    max_attempts: int
    _unrecorded_digests: dict[str, DigestResult]

    def _send(self, target: RouteTarget, rendered: RenderedAlert) -> str | None:
        raise NotImplementedError

    def _backoff(self, attempts: int) -> timedelta:
        raise NotImplementedError

    def _count_delivery(self, result: str) -> None:
        raise NotImplementedError

    def send_digests(self) -> int:
        """Send each digest route's collected alerts when its cron time has come."""
        sent = 0
        for target in self.targets.values():
            if not target.digest_cron or not self._digest_recorded(target.rules.name):
                continue  # a digest that went out unrecorded is written down before the next
            if self._digest_due(target):
                sent += self._send_digest(target)
        return sent

    def _digest_recorded(self, route: str) -> bool:
        """Write down the route's last digest if the database could not take it; False while
        it still cannot."""
        result = self._unrecorded_digests.get(route)
        if result is None:
            return True
        try:
            self._record_digest(result)
        except SQLAlchemyError as exc:
            logger.warning("still cannot record the digest of route %s: %s", route, exc)
            return False
        del self._unrecorded_digests[route]
        return True

    def _digest_due(self, target: RouteTarget) -> bool:
        now = self.now()
        assert target.digest_cron is not None
        with self.sessions.begin() as session:
            state = session.get(RouteStateRow, target.rules.name)
            if state is None:
                state = RouteStateRow(route=target.rules.name, last_digest_at=None)
                session.add(state)
            schedule = _schedule_key(target)
            if state.next_digest_at is not None and state.digest_schedule is None:
                # Scheduled before schedules were remembered (an upgraded database): keep the
                # time it has, which may be a failed digest's backoff.
                state.digest_schedule = schedule
            if state.next_digest_at is None or state.digest_schedule != schedule:
                # Counted from the oldest waiting alert, so a route's first digest (or the
                # first after its schedule changed) is not pushed back by however late this
                # check ran; never from before the last digest.
                state.digest_schedule = schedule
                oldest = session.scalar(
                    select(func.min(AlertRow.created_at)).where(
                        AlertRow.route == target.rules.name, AlertRow.status == "digest"
                    )
                )
                base = min(oldest, now) if oldest is not None else now
                if state.last_digest_at is not None:
                    base = max(base, state.last_digest_at)
                state.next_digest_at = next_digest_time(target.digest_cron, target.digest_tz, base)
            return state.next_digest_at <= now

    def _send_digest(self, target: RouteTarget) -> int:
        now = self.now()
        name = target.rules.name
        assert target.digest_cron is not None
        with self.sessions.begin() as session:
            rows = list(
                session.scalars(
                    select(AlertRow)
                    .where(AlertRow.route == name, AlertRow.status == "digest")
                    .where(AlertRow.created_at <= now)
                    .order_by(AlertRow.id)
                )
            )
            messages = collapse_by_event(
                [(row.event_id, payload_to_message(row.payload)) for row in rows],
                _events_now(session, {row.event_id for row in rows if row.event_id is not None}),
            )
            ids = [row.id for row in rows]
            label = _period_label(session, name, now)
        error = None
        if messages:
            fmt = format_for_url(target.url, target.body_format)
            error = self._send(target, render_digest(name, messages, fmt, period_label=label))
            # A digest never dead-letters (it waits for its next time): sent or failed.
            self._count_delivery("sent" if error is None else "failed")
        result = DigestResult(target, ids, error, now)
        # As for single alerts: a digest that went out must be written down, or it goes again.
        if (
            with_mark_retries(f"the digest of route {name}", lambda: self._record_digest(result))
            is None
        ):
            self._unrecorded_digests[name] = result
        if messages and error is None:
            logger.info("digest sent route=%s events=%d", name, len(messages))
            return 1
        return 0

    def _record_digest(self, result: DigestResult) -> str:
        """Mark a digest's rows sent and schedule the next one, or count its failure."""
        target, ids, error, now = result.target, result.ids, result.error, result.sent_at
        assert target.digest_cron is not None
        with self.sessions.begin() as session:
            state = session.get(RouteStateRow, target.rules.name)
            assert state is not None
            if error is not None:
                self._digest_failed(session, state, target, ids, error, now)
                return "failed"
            if ids:
                session.execute(
                    update(AlertRow)
                    .where(AlertRow.id.in_(ids))
                    .values(status="sent", sent_at=now, digest_id=ids[0],
                            attempts=AlertRow.attempts + 1)
                    .execution_options(synchronize_session=False)
                )  # fmt: skip
            state.last_digest_at = now
            state.next_digest_at = next_digest_time(target.digest_cron, target.digest_tz, now)
            return "sent"

    def _digest_failed(
        self,
        session: Session,
        state: RouteStateRow,
        target: RouteTarget,
        ids: list[int],
        error: str,
        now: datetime,
    ) -> None:
        """Count the failed attempt on the digest's rows and retry with the same backoff as
        single alerts; after as many attempts, wait for the next regular digest time. The rows
        stay queued for the digest: dead-lettered, a retry would send them one by one."""
        counted = session.execute(
            update(AlertRow)
            .where(AlertRow.id.in_(ids))
            .values(attempts=AlertRow.attempts + 1, last_error=error)
            .returning(AlertRow.attempts)
            .execution_options(synchronize_session=False)
        ).scalars()
        attempts = max(counted, default=0)
        if attempts >= self.max_attempts:
            assert target.digest_cron is not None
            state.next_digest_at = next_digest_time(target.digest_cron, target.digest_tz, now)
            logger.error(
                "digest failed %d times route=%s alerts=%d, next at its regular time: %s",
                attempts, target.rules.name, len(ids), error,
            )  # fmt: skip
            return
        state.next_digest_at = now + self._backoff(max(attempts, 1))
        logger.warning("digest failed route=%s attempt=%d: %s", target.rules.name, attempts, error)


def _events_now(session: Session, event_ids: set[int]) -> dict[int, EventNow]:
    """The current stage and report count of the events a digest lists."""
    if not event_ids:
        return {}
    rows = session.execute(
        select(EventRow.id, EventRow.stage, EventRow.item_count).where(
            EventRow.id.in_(sorted(event_ids))
        )
    )
    return {event_id: EventNow(stage, count) for event_id, stage, count in rows}


def with_mark_retries(what: str, mark: Callable[[], str]) -> str | None:
    """Run `mark`, the write that records a send, through a database blip: tried
    MARK_ATTEMPTS times; None when it never took."""
    for attempt in range(MARK_ATTEMPTS):
        try:
            return mark()
        except SQLAlchemyError as exc:
            logger.warning("could not record %s, retrying: %s", what, exc)
            if attempt < MARK_ATTEMPTS - 1:
                time.sleep(MARK_RETRY_S)
    return None


def _schedule_key(target: RouteTarget) -> str:
    """A short fixed-size key of a route's digest schedule (a cron line has no length limit)."""
    return hashlib.sha256(f"{target.digest_cron}|{target.digest_tz}".encode()).hexdigest()


def _period_label(session: Session, route: str, now: datetime) -> str:
    state = session.get(RouteStateRow, route)
    since = state.last_digest_at if state is not None else None
    if since is None:
        return f"until {now:%Y-%m-%d %H:%M} UTC"
    return f"{since:%Y-%m-%d %H:%M} – {now:%Y-%m-%d %H:%M} UTC"
