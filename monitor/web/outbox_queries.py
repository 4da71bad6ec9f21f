"""The alert outbox as operators read it: rows by status and route, and their counts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fastapi import HTTPException
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from monitor.store.models import (
    AlertRow,
    EventRow,
)

# ------------------------------------------------------------------------------ outbox

# The outbox's statuses (monitor.alerts.outbox, delivery, digest_delivery): waiting to be
# sent, leased by a sender, waiting for its route's digest, sent, given up on.
ALERT_STATUSES = ("pending", "sending", "digest", "sent", "dead")


@dataclass(frozen=True, slots=True)
class AlertEntry:
    id: int
    route: str
    kind: str
    title: str
    event_id: int | None
    event_title: str | None
    feed_id: int | None
    status: str
    attempts: int
    last_error: str | None
    due_at: datetime
    created_at: datetime
    sent_at: datetime | None


def parse_alert_status(raw: str | None) -> str | None:
    if not raw:
        return None
    if raw not in ALERT_STATUSES:
        raise HTTPException(400, f"status: unknown {raw!r}; use {', '.join(ALERT_STATUSES)}")
    return raw


def alerts_page(
    session: Session,
    *,
    status: str | None,
    route: str | None,
    after: list[Any] | None = None,
    limit: int = 50,
) -> tuple[list[AlertEntry], list[Any] | None]:
    """Outbox rows, newest first, with their event's title (one outer join)."""
    query = select(AlertRow, EventRow.title).outerjoin(EventRow, EventRow.id == AlertRow.event_id)
    if status:
        query = query.where(AlertRow.status == status)
    if route:
        query = query.where(AlertRow.route == route)
    if after is not None:
        try:
            query = query.where(AlertRow.id < int(after[0]))
        except (TypeError, ValueError, IndexError) as exc:
            raise HTTPException(400, "cursor: not a cursor of this list") from exc
    query = query.order_by(AlertRow.id.desc()).limit(limit + 1)
    rows = [
        AlertEntry(
            id=alert.id,
            route=alert.route,
            kind=alert.kind,
            title=str((alert.payload or {}).get("title") or ""),
            event_id=alert.event_id,
            event_title=event_title,
            feed_id=alert.feed_id,
            status=alert.status,
            attempts=alert.attempts,
            last_error=alert.last_error,
            due_at=alert.due_at,
            created_at=alert.created_at,
            sent_at=alert.sent_at,
        )  # fmt: skip
        for alert, event_title in session.execute(query)
    ]
    page = rows[:limit]
    return page, ([page[-1].id] if len(rows) > limit and page else None)


def outbox_counts(session: Session, route: str | None = None) -> dict[str, int]:
    """How many alerts are in each status (of one route, or all)."""
    query = select(AlertRow.status, func.count(AlertRow.id)).group_by(AlertRow.status)
    if route:
        query = query.where(AlertRow.route == route)
    counts = dict.fromkeys(ALERT_STATUSES, 0)
    for status, count in session.execute(query):
        counts[status] = int(count)
    return counts


def alert_routes(session: Session) -> list[str]:
    return list(session.scalars(select(AlertRow.route).distinct().order_by(AlertRow.route)))
