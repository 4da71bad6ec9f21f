"""The outbox: alerts written in the caller's transaction, once per (route, dedup key).

An alert row is written together with what earned it (the flagged item, the feed's state),
so a crash can never leave a flagged item without its alerts or an alert without its item;
the sender (`delivery`) reads the rows and sends them. Which routes want a message and when
(now, after quiet hours, in a digest) is decided here by the routing rules.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from monitor.alerts.routing import (
    Decision,
    RouteRules,
    decide,
    in_quiet_hours,
    matches,
    quiet_end_after,
)
from monitor.domain import AlertMessage
from monitor.store import repo
from monitor.store.models import ItemRow

HEALTH_KINDS = ("feed_broken", "feed_recovered", "feed_gone")
# Not a measure (monitor.signals): sent as it happens, never folded into a digest or held
# back by a rate limit, but quiet hours apply as to a measure of its categories.
SIGNAL_KINDS = ("signal",)


class Outbox:
    """Queues messages for the configured routes."""

    def __init__(self, routes: Sequence[RouteRules]) -> None:
        self.routes = tuple(routes)

    def queue(
        self,
        session: Session,
        message: AlertMessage,
        dedup_key: str,
        now: datetime,
        *,
        event_id: int | None = None,
        item_id: int | None = None,
        feed_id: int | None = None,
    ) -> int:
        """Write one outbox row per route that wants this message; idempotent per route."""
        queued = 0
        for rules in self.routes:
            status, due = self._placement(session, rules, message, now)
            if status is None:
                continue
            row = {
                "route": rules.name,
                "dedup_key": dedup_key,
                "kind": message.kind,
                "event_id": event_id,
                "item_id": item_id,
                "feed_id": feed_id,
                "status": status,
                "payload": message_to_payload(message),
                "due_at": due,
                "attempts": 0,
                "created_at": now,
            }
            # Another process (or an earlier run) may have queued it already: once per route.
            queued += repo.add_alert_once(session, row)
        return queued

    def _placement(
        self, session: Session, rules: RouteRules, message: AlertMessage, now: datetime
    ) -> tuple[str | None, datetime]:
        if message.kind in HEALTH_KINDS:
            return ("pending" if "feed_health" in rules.kinds else None), now
        if not matches(
            rules,
            kind=message.kind,
            score=message.score,
            country=message.country,
            categories=frozenset(message.categories),
            stage=message.stage,
        ):
            return None, now
        if message.kind in SIGNAL_KINDS:
            quiet = rules.quiet_except.isdisjoint(message.categories) and in_quiet_hours(rules, now)
            return "pending", quiet_end_after(rules, now) if quiet else now
        sent = 0
        if rules.rate_limit_count is not None and rules.rate_limit_per is not None:
            sent = repo.count_sent_since(session, rules.name, now - rules.rate_limit_per)
        decision = decide(
            rules,
            kind=message.kind,
            categories=frozenset(message.categories),
            now=now,
            sent_in_window=sent,
        )
        if decision == Decision.SEND_NOW:
            return "pending", now
        if decision == Decision.HOLD_UNTIL_QUIET_END:
            return "pending", quiet_end_after(rules, now)
        if decision == Decision.TO_DIGEST:
            return "digest", now
        return None, now


_MESSAGE_FIELDS = tuple(f.name for f in fields(AlertMessage))


def message_to_payload(message: AlertMessage) -> dict[str, Any]:
    """An AlertMessage as JSON-safe data for the outbox row."""
    # Shallow: every field is a plain value or a tuple replaced below (asdict's deep copy
    # cost a busy batch's writer as much as the alert's INSERT).
    data = {name: getattr(message, name) for name in _MESSAGE_FIELDS}
    data["published"] = message.published.isoformat() if message.published else None
    data["categories"] = list(message.categories)
    data["matched_terms"] = list(message.matched_terms)
    data["evidence"] = list(message.evidence)
    data["extra_lines"] = list(message.extra_lines)
    data["targets"] = list(message.targets)
    data["quote_marks"] = [list(mark) for mark in message.quote_marks]
    return data


def payload_to_message(data: dict[str, Any]) -> AlertMessage:
    """Rebuild the AlertMessage an outbox row was written with."""
    published = data.get("published")
    return AlertMessage(
        kind=data["kind"],
        title=data["title"],
        link=data.get("link"),
        source=data.get("source", ""),
        country=data.get("country"),
        categories=tuple(data.get("categories", ())),
        stage=data.get("stage", "none"),
        score=float(data.get("score", 0.0)),
        matched_terms=tuple(data.get("matched_terms", ())),
        evidence=tuple(data.get("evidence", ())),
        published=datetime.fromisoformat(published) if published else None,
        other_sources=int(data.get("other_sources", 0)),
        previous_stage=data.get("previous_stage"),
        extra_lines=tuple(data.get("extra_lines", ())),
        targets=tuple(data.get("targets", ())),
        quote=data.get("quote", ""),
        quote_marks=tuple((int(a), int(b)) for a, b in data.get("quote_marks", ())),
        event_id=data.get("event_id"),
    )


def event_source_count(session: Session, event_id: int) -> int:
    """How many sources (items and their syndicated copies) report an event."""
    total = session.scalar(
        select(func.coalesce(func.sum(ItemRow.source_count), 0)).where(ItemRow.event_id == event_id)
    )
    return int(total or 0)
