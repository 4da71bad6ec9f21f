"""Feed-health notices: tell the admins once that a feed broke (or is gone), and once that
it recovered, through the routes that subscribe to `feed_health`."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy.orm import Session

from monitor.alerts.outbox import Outbox
from monitor.domain import AlertMessage
from monitor.store.models import FeedRow

logger = logging.getLogger(__name__)


def feed_broken(outbox: Outbox, session: Session, row: FeedRow, now: datetime) -> None:
    """Tell the admins once that a feed is broken (or gone), and not again until it heals."""
    if row.broken_alerted:
        return
    row.broken_alerted = True
    kind = "feed_gone" if row.gone else "feed_broken"
    episode = (row.last_success_at or row.created_at).isoformat()
    what = "returns 410 Gone; now tried once a day" if row.gone else "keeps failing"
    message = _health_message(
        kind, row, f"Feed {row.name} {what}: {row.last_error or row.last_error_kind}"
    )
    outbox.queue(session, message, f"feed:{row.id}:{kind}:{episode}", now, feed_id=row.id)
    logger.warning("feed broken feed=%s failures=%d", row.name, row.consecutive_failures)


def feed_recovered(outbox: Outbox, session: Session, row: FeedRow, now: datetime) -> None:
    """Tell the admins that a feed they were told about works again."""
    row.broken_alerted = False
    episode = (row.last_success_at or row.created_at).isoformat()
    message = _health_message("feed_recovered", row, f"Feed {row.name} works again")
    outbox.queue(session, message, f"feed:{row.id}:recovered:{episode}", now, feed_id=row.id)
    logger.info("feed recovered feed=%s", row.name)


def _health_message(kind: str, row: FeedRow, title: str) -> AlertMessage:
    return AlertMessage(
        kind=kind,
        title=title,
        link=None,
        source=row.name,
        country=row.country,
        categories=(),
        stage="none",
        score=0.0,
        matched_terms=(),
        evidence=(f"consecutive failures: {row.consecutive_failures}",),
        published=None,
    )
