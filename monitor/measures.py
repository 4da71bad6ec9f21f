"""From a flagged item to a measure: join or start an event, then queue the alerts it earns.

The outbox rows are written in the caller's transaction, together with the item, so a crash
can never leave a flagged item without its alerts or an alert without its item.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
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
from monitor.store.models import EventRow, FeedRow, ItemRow

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


@dataclass(frozen=True, slots=True)
class FlaggedItem:
    """A stored item the classifier flagged, waiting for its event and alerts."""

    item_id: int
    feed_id: int
    feed_name: str
    entry: Entry
    assessment: Assessment


@dataclass(frozen=True, slots=True)
class _Probe:
    """A flagged item as clustering sees it, with the keys it is looked up by."""

    item: ItemForClustering
    keys: list[str]
    since: datetime


class BatchEvents:
    """The events a batch of flagged items may join: loaded in a few statements, then kept
    current in memory as the batch starts and moves events, so each item costs no query.

    It answers what one query per item would: the events filed under one of the item's keys
    (its country's only, seen within the window, the newest KEY_EVENTS_CHECKED), plus its
    country's newest NEWEST_EVENTS_CHECKED events. Events only ever gain keys and move
    forward in time, so those newest are always among the loaded ones and the batch's own.
    The keys events gain are written once, by `save`.
    """

    def __init__(self, stored: repo.StoredEvents) -> None:
        self._rows: dict[int, EventRow] = {row.id: row for row in stored.events}
        self._fingerprints: dict[int, TextFingerprint] = {}
        self._filed_under: dict[str, set[int]] = {}
        for event_id, key in stored.filed:
            if event_id in self._rows:
                self._filed_under.setdefault(key, set()).add(event_id)
        self._countries: dict[str | None, set[int]] = {}
        for row in self._rows.values():
            self._countries.setdefault(row.country, set()).add(row.id)
        self._unsaved: list[tuple[int, str]] = []

    @classmethod
    def load(cls, session: Session, probes: Sequence[_Probe]) -> BatchEvents:
        keys = {key for probe in probes for key in probe.keys}
        countries = {probe.item.country for probe in probes}
        since = min(probe.since for probe in probes)
        return cls(repo.stored_events(session, keys, countries, since))

    def row(self, event_id: int) -> EventRow:
        return self._rows[event_id]

    def fingerprint(self, row: EventRow) -> TextFingerprint:
        """The event's current fingerprint (decoded once per batch)."""
        found = self._fingerprints.get(row.id)
        if found is None:
            found = self._fingerprints[row.id] = TextFingerprint.from_bytes(row.fingerprint)
        return found

    def candidates(self, probe: _Probe) -> list[EventRow]:
        """The events a query for this item would return; newest first."""
        country, since = probe.item.country, probe.since

        def newest_first(ids: Iterable[int]) -> list[EventRow]:
            rows = [self._rows[i] for i in sorted(ids)]
            # A key is scoped by country, but a hash can collide: keep the item's country only.
            rows = [row for row in rows if row.country == country and row.last_seen >= since]
            return sorted(rows, key=lambda row: row.last_seen, reverse=True)

        by_key: set[int] = set()
        for key in probe.keys:
            by_key.update(self._filed_under.get(key, ()))
        chosen = newest_first(by_key)[: repo.KEY_EVENTS_CHECKED]
        newest = newest_first(self._countries.get(country, ()))[: repo.NEWEST_EVENTS_CHECKED]
        return newest_first({row.id for row in chosen} | {row.id for row in newest})

    def file(self, row: EventRow, fingerprint: TextFingerprint, keys: list[str]) -> None:
        """Record a new event, or an event's new fingerprint; file it under `keys` too."""
        self._rows[row.id] = row
        self._fingerprints[row.id] = fingerprint
        self._countries.setdefault(row.country, set()).add(row.id)
        for key in keys:
            filed = self._filed_under.setdefault(key, set())
            if row.id not in filed:
                filed.add(row.id)
                self._unsaved.append((row.id, key))

    def save(self, session: Session) -> None:
        """Write the keys events gained in this batch, in one statement."""
        repo.add_event_bands(session, self._unsaved)
        self._unsaved.clear()


class MeasureRecorder:
    """Clusters flagged items into events and queues alerts for the configured routes."""

    def __init__(self, routes: Sequence[RouteRules], window: timedelta = EVENT_WINDOW) -> None:
        self.routes = tuple(routes)
        self.window = window

    def record_batch(
        self, session: Session, flagged: Sequence[FlaggedItem], now: datetime
    ) -> list[tuple[int, int]]:
        """Find each flagged item's event and queue its alerts, in order, as if one by one;
        returns (event id, alerts queued) per item.

        The caller records the items' event ids (in bulk, with the rest of the batch).
        """
        if not flagged:
            return []
        probes = [self._probe(f.entry, f.assessment, now) for f in flagged]
        events = BatchEvents.load(session, probes)
        recorded = [
            self._record(session, events, item, probe, now)
            for item, probe in zip(flagged, probes, strict=True)
        ]
        events.save(session)
        return recorded

    def _probe(self, entry: Entry, assessment: Assessment, now: datetime) -> _Probe:
        fingerprint = text_fingerprint(entry.title, entry.summary)
        seen = min(entry.published, now)
        categories = frozenset(str(c) for c in assessment.categories)
        item = ItemForClustering(
            country=assessment.country,
            categories=categories,
            stage=str(assessment.stage),
            fingerprint=fingerprint,
            published=seen,
            title=entry.title,
        )
        keys = lookup_keys(assessment.country, categories, fingerprint)
        return _Probe(item, keys, seen - self.window)

    def _record(
        self,
        session: Session,
        events: BatchEvents,
        flagged: FlaggedItem,
        probe: _Probe,
        now: datetime,
    ) -> tuple[int, int]:
        entry, assessment = flagged.entry, flagged.assessment
        change = self._assign_event(session, events, probe, assessment.score)
        if change.kind is None:
            return change.event.id, 0
        message = AlertMessage(
            kind=change.kind,
            title=entry.title,
            link=entry.url,
            source=flagged.feed_name,
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
        queued = self.queue(
            session, message, key, now, event_id=change.event.id, item_id=flagged.item_id
        )
        return change.event.id, queued

    def _assign_event(
        self, session: Session, events: BatchEvents, probe: _Probe, score: float
    ) -> EventChange:
        """Join the event this item reports, or start a new one."""
        item = probe.item
        rows = events.candidates(probe)
        candidates = [_candidate(row, events.fingerprint(row)) for row in rows]
        match = match_event(item, candidates, window=self.window)
        if match is None:
            event = EventRow(
                country=item.country,
                categories=sorted(item.categories),
                stage=item.stage,
                title=item.title,
                fingerprint=item.fingerprint.to_bytes(),
                first_seen=item.published,
                last_seen=item.published,
                item_count=1,
                max_score=score,
            )
            session.add(event)
            session.flush()
            events.file(event, item.fingerprint, probe.keys)
            return EventChange(event, "new")
        event = events.row(match.event_id)
        event.last_seen = max(event.last_seen, item.published)
        event.item_count += 1
        event.max_score = max(event.max_score, score)
        self._carry_forward(events, event, item, match.near_duplicate)
        moved_to = advance_stage(event.stage, item.stage)
        if moved_to is None:
            return EventChange(event, None)
        previous, event.stage = event.stage, moved_to
        return EventChange(event, "update", previous)

    @staticmethod
    def _carry_forward(
        events: BatchEvents,
        event: EventRow,
        item: ItemForClustering,
        near_duplicate: bool,
    ) -> None:
        """Let the event follow its newest wording, without letting it swallow other measures.

        Only a near-duplicate copy may widen what the event is about (its categories and key
        terms); a looser follow-up just moves the text signature. Otherwise every joined item
        would add terms and categories until one event matched every measure of a country.
        """
        stored = events.fingerprint(event)
        if near_duplicate:
            event.categories = sorted(set(event.categories) | item.categories)
            moved = merge_fingerprints(stored, item.fingerprint)
        else:
            moved = TextFingerprint(item.fingerprint.signature, stored.terms)
        event.fingerprint = moved.to_bytes()
        # The event stays filed under its old keys too: the follow-ups of either wording.
        events.file(event, moved, lookup_keys(event.country, frozenset(event.categories), moved))

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
        what = "returns 410 Gone; now tried once a day" if row.gone else "keeps failing"
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


def _candidate(row: EventRow, fingerprint: TextFingerprint) -> EventCandidate:
    return EventCandidate(
        event_id=row.id,
        country=row.country,
        categories=frozenset(row.categories),
        stage=row.stage,
        fingerprint=fingerprint,
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
