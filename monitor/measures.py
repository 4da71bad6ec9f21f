"""From a flagged item to a measure: join or start an event, then queue the alerts it earns.

The outbox rows are written in the caller's transaction, together with the item, so a crash
can never leave a flagged item without its alerts or an alert without its item.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from monitor.alerts.routing import Decision, RouteRules, decide, matches, quiet_end_after
from monitor.domain import AlertMessage, Assessment, Entry
from monitor.events import (
    EventCandidate,
    ItemForClustering,
    TextFingerprint,
    advance_stage,
    band_keys,
    match_event,
    merge_fingerprints,
    text_fingerprint,
)
from monitor.store import repo
from monitor.store.models import AlertRow, EventRow, FeedRow, ItemRow

logger = logging.getLogger(__name__)

EVENT_WINDOW = timedelta(days=21)
HEALTH_KINDS = ("feed_broken", "feed_recovered", "feed_gone")


@dataclass(frozen=True, slots=True)
class EventChange:
    """How an item moved its event: a new measure, a stage update, or just another source."""

    event: EventRow
    kind: str | None  # "new", "update" or None
    previous_stage: str | None = None


def message_to_payload(message: AlertMessage) -> dict[str, Any]:
    """An AlertMessage as JSON-safe data for the outbox row."""
    data = asdict(message)
    data["published"] = message.published.isoformat() if message.published else None
    data["categories"] = list(message.categories)
    data["matched_terms"] = list(message.matched_terms)
    data["evidence"] = list(message.evidence)
    data["extra_lines"] = list(message.extra_lines)
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
    )


class MeasureRecorder:
    """Clusters flagged items into events and queues alerts for the configured routes."""

    def __init__(self, routes: Sequence[RouteRules], window: timedelta = EVENT_WINDOW) -> None:
        self.routes = tuple(routes)
        self.window = window

    def record(
        self,
        session: Session,
        item_id: int,
        entry: Entry,
        assessment: Assessment,
        feed_name: str,
        now: datetime,
    ) -> tuple[int, int]:
        """Find a flagged item's event and queue its alerts; returns (event id, alerts queued).

        The caller records the item's event id (in bulk, with the other items of the feed).
        """
        change = self.assign_event(session, item_id, entry, assessment, now)
        if change.kind is None:
            return change.event.id, 0
        message = AlertMessage(
            kind=change.kind,
            title=entry.title,
            link=entry.url,
            source=feed_name,
            country=change.event.country,
            categories=tuple(change.event.categories),
            stage=change.event.stage,
            score=assessment.score,
            matched_terms=assessment.matched_terms,
            evidence=assessment.evidence,
            published=entry.published,
            other_sources=max(change.event.item_count - 1, 0),
            previous_stage=change.previous_stage,
        )
        key = f"event:{change.event.id}:{change.kind}"
        if change.kind == "update":
            key += f":{change.event.stage}"
        queued = self.queue(session, message, key, now, event_id=change.event.id, item_id=item_id)
        return change.event.id, queued

    def assign_event(
        self, session: Session, item_id: int, entry: Entry, assessment: Assessment, now: datetime
    ) -> EventChange:
        """Join the event this item reports, or start a new one."""
        fingerprint = text_fingerprint(entry.title, entry.summary)
        seen = min(entry.published, now)
        categories = frozenset(str(c) for c in assessment.categories)
        keys = lookup_keys(assessment.country, categories, fingerprint)
        rows = repo.event_candidates(session, keys, assessment.country, seen - self.window)
        candidates = [_candidate(row) for row in rows]
        probe = ItemForClustering(
            country=assessment.country,
            categories=categories,
            stage=str(assessment.stage),
            fingerprint=fingerprint,
            published=seen,
            title=entry.title,
        )
        match = match_event(probe, candidates, window=self.window)
        if match is None:
            event = EventRow(
                country=assessment.country,
                categories=sorted(categories),
                stage=str(assessment.stage),
                title=entry.title,
                fingerprint=fingerprint.to_bytes(),
                first_seen=seen,
                last_seen=seen,
                item_count=1,
                max_score=assessment.score,
            )
            session.add(event)
            session.flush()
            repo.add_event_bands(session, event.id, keys)
            return EventChange(event, "new")
        event = next(row for row in rows if row.id == match.event_id)
        event.last_seen = max(event.last_seen, seen)
        event.item_count += 1
        event.max_score = max(event.max_score, assessment.score)
        self._carry_forward(session, event, fingerprint, categories, match.near_duplicate)
        moved_to = advance_stage(event.stage, str(assessment.stage))
        if moved_to is None:
            return EventChange(event, None)
        previous, event.stage = event.stage, moved_to
        return EventChange(event, "update", previous)

    @staticmethod
    def _carry_forward(
        session: Session,
        event: EventRow,
        fingerprint: TextFingerprint,
        categories: frozenset[str],
        near_duplicate: bool,
    ) -> None:
        """Let the event follow its newest wording, without letting it swallow other measures.

        Only a near-duplicate copy may widen what the event is about (its categories and key
        terms); a looser follow-up just moves the text signature. Otherwise every joined item
        would add terms and categories until one event matched every measure of a country.
        """
        stored = TextFingerprint.from_bytes(event.fingerprint)
        filed_under = set(lookup_keys(event.country, frozenset(event.categories), stored))
        if near_duplicate:
            event.categories = sorted(set(event.categories) | categories)
            moved = merge_fingerprints(stored, fingerprint)
        else:
            moved = TextFingerprint(fingerprint.signature, stored.terms)
        event.fingerprint = moved.to_bytes()
        keys = lookup_keys(event.country, frozenset(event.categories), moved)
        # Only the keys the event was not filed under yet: most joins add none or a few.
        repo.add_event_bands(session, event.id, [key for key in keys if key not in filed_under])

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
            row = AlertRow(
                route=rules.name,
                dedup_key=dedup_key,
                kind=message.kind,
                event_id=event_id,
                item_id=item_id,
                feed_id=feed_id,
                status=status,
                payload=message_to_payload(message),
                due_at=due,
                attempts=0,
                created_at=now,
            )
            try:
                with session.begin_nested():
                    session.add(row)
            except IntegrityError:
                # Another process (or an earlier run) queued it already: once per route.
                continue
            queued += 1
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

    def feed_broken(self, session: Session, row: FeedRow, now: datetime) -> None:
        """Tell the admins once that a feed is broken (or gone), and not again until it heals."""
        if row.broken_alerted:
            return
        row.broken_alerted = True
        kind = "feed_gone" if row.gone else "feed_broken"
        episode = (row.last_success_at or row.created_at).isoformat()
        what = "returns 410 Gone; polling stopped" if row.gone else "keeps failing"
        message = _health_message(
            kind, row, f"Feed {row.name} {what}: {row.last_error or row.last_error_kind}"
        )
        self.queue(session, message, f"feed:{row.id}:{kind}:{episode}", now, feed_id=row.id)
        logger.warning("feed broken feed=%s failures=%d", row.name, row.consecutive_failures)

    def feed_recovered(self, session: Session, row: FeedRow, now: datetime) -> None:
        """Tell the admins that a feed they were told about works again."""
        row.broken_alerted = False
        episode = (row.last_success_at or row.created_at).isoformat()
        message = _health_message("feed_recovered", row, f"Feed {row.name} works again")
        self.queue(session, message, f"feed:{row.id}:recovered:{episode}", now, feed_id=row.id)
        logger.info("feed recovered feed=%s", row.name)


def lookup_keys(
    country: str | None, categories: frozenset[str], fingerprint: TextFingerprint
) -> list[str]:
    """The indexed keys an event is filed under and an item is looked up by.

    Both kinds are scoped by country, as matching requires: the fingerprint's LSH bands
    (near-duplicate copies) and one key per (category, key term) pair (follow-ups, which
    reword a story too much for LSH but keep its platform, law or decree). Hashed, so every
    key fits the column whatever the term.
    """
    scope = country or "--"
    keys = [f"{scope}|{band}" for band in band_keys(fingerprint)]
    for category in sorted(categories):
        for term in sorted(fingerprint.terms):
            digest = hashlib.blake2b(f"{category}|{term}".encode(), digest_size=8).hexdigest()
            keys.append(f"{scope}|k:{digest}")
    return keys


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


def _candidate(row: EventRow) -> EventCandidate:
    return EventCandidate(
        event_id=row.id,
        country=row.country,
        categories=frozenset(row.categories),
        stage=row.stage,
        fingerprint=TextFingerprint.from_bytes(row.fingerprint),
        first_seen=row.first_seen,
        last_seen=row.last_seen,
        title=row.title,
    )


def event_source_count(session: Session, event_id: int) -> int:
    """How many sources (items and their syndicated copies) report an event."""
    total = session.scalar(
        select(func.coalesce(func.sum(ItemRow.source_count), 0)).where(ItemRow.event_id == event_id)
    )
    return int(total or 0)
