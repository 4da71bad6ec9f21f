"""From a flagged item to a measure: join or start an event, then queue the alerts it earns.

The outbox rows are written in the caller's transaction, together with the item, so a crash
can never leave a flagged item without its alerts or an alert without its item.
"""

from __future__ import annotations

import hashlib
import logging
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from monitor.alerts.quote import evidence_quote
from monitor.alerts.routing import Decision, RouteRules, decide, matches, quiet_end_after
from monitor.domain import AlertMessage, Assessment, Entry
from monitor.events import (
    LONGEST_WINDOW,
    EventCandidate,
    ItemForClustering,
    Match,
    TextFingerprint,
    band_keys,
    identity_keys,
    match_event,
    merge_fingerprints,
    stage_move,
    text_fingerprint,
)
from monitor.store import repo
from monitor.store.models import EventRow, FeedRow, ItemRow
from monitor.targets import NO_TARGETS, TargetReader, TargetSet, load_targets

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
    keys: list[str]  # text keys: LSH bands and key terms
    since: datetime  # the text window's start
    identity: list[str]  # identity keys: country, kind of measure, target
    identity_since: datetime  # how far back a measure in force stays open to them

    @property
    def all_keys(self) -> list[str]:
        return self.keys + self.identity


class _Recent:
    """The ids most recently filed or moved under one key, newest last, at most `capacity`.

    Events only move forward in time, so the order in which they were last touched is the
    order of their last_seen, and keeping the newest few costs O(1) per touch, however many
    events a key (or a country) has gathered.
    """

    __slots__ = ("_capacity", "_ids")

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._ids: OrderedDict[int, None] = OrderedDict()

    def touch(self, event_id: int) -> bool:
        """Mark an id as the newest; False if it was already filed here."""
        known = event_id in self._ids
        self._ids[event_id] = None
        self._ids.move_to_end(event_id)
        if len(self._ids) > self._capacity:
            self._ids.popitem(last=False)
        return not known

    def __iter__(self) -> Iterator[int]:
        return reversed(self._ids)


class BatchEvents:
    """The events a batch of flagged items may join: loaded in a few statements, then kept
    current in memory as the batch starts and moves events, so each item costs no query.

    It answers what one query per item would: the newest KEY_EVENTS_CHECKED events filed
    under each of the item's keys (its country's only, seen within the window), plus its
    country's newest NEWEST_EVENTS_CHECKED events. Both are kept as bounded lists of the
    newest ids, so an item's candidates are bounded however many events the batch or the
    database holds. The keys events gain are written once, by `save`.
    """

    def __init__(self, stored: repo.StoredEvents) -> None:
        self._rows: dict[int, EventRow] = {row.id: row for row in stored.events}
        self._fingerprints: dict[int, TextFingerprint] = {}
        self._filed_under: dict[str, _Recent] = {}
        self._newest: dict[str | None, _Recent] = {}
        # Oldest first, so the newest end up at the head of each bounded list.
        for row in sorted(self._rows.values(), key=lambda row: (row.last_seen, row.id)):
            self._newest_of(row.country).touch(row.id)
        filed = [(event_id, key) for event_id, key in stored.filed if event_id in self._rows]
        filed.sort(key=lambda pair: (self._rows[pair[0]].last_seen, pair[0]))
        for event_id, key in filed:
            self._under(key).touch(event_id)
        self._unsaved: list[tuple[int, str]] = []

    @classmethod
    def load(cls, session: Session, probes: Sequence[_Probe]) -> BatchEvents:
        stored = repo.stored_events(
            session,
            {key for probe in probes for key in probe.keys},
            {probe.item.country for probe in probes},
            min(probe.since for probe in probes),
            identity_keys={key for probe in probes for key in probe.identity},
            identity_since=min(probe.identity_since for probe in probes),
        )
        return cls(stored)

    def _under(self, key: str) -> _Recent:
        found = self._filed_under.get(key)
        if found is None:
            found = self._filed_under[key] = _Recent(repo.KEY_EVENTS_CHECKED)
        return found

    def _newest_of(self, country: str | None) -> _Recent:
        found = self._newest.get(country)
        if found is None:
            found = self._newest[country] = _Recent(repo.NEWEST_EVENTS_CHECKED)
        return found

    def row(self, event_id: int) -> EventRow:
        return self._rows[event_id]

    @property
    def loaded(self) -> list[EventRow]:
        """Every event the batch holds."""
        return list(self._rows.values())

    def fingerprint(self, row: EventRow) -> TextFingerprint:
        """The event's current fingerprint (decoded once per batch)."""
        found = self._fingerprints.get(row.id)
        if found is None:
            found = self._fingerprints[row.id] = TextFingerprint.from_bytes(row.fingerprint)
        return found

    def candidates(self, probe: _Probe) -> list[EventRow]:
        """The events a query for this item would return; newest first."""
        country = probe.item.country
        text_ids: set[int] = set(self._newest_of(country))
        for key in probe.keys:
            found = self._filed_under.get(key)
            if found is not None:
                text_ids.update(found)
        identity_ids: set[int] = set()
        for key in probe.identity:
            found = self._filed_under.get(key)
            if found is not None:
                identity_ids.update(found)
        rows = [self._rows[i] for i in text_ids if self._rows[i].last_seen >= probe.since]
        rows += [
            self._rows[i]
            for i in identity_ids - text_ids
            if self._rows[i].last_seen >= probe.identity_since
        ]
        # A key is scoped by country, but a hash can collide: keep the item's country only.
        rows = [row for row in rows if row.country == country]
        return sorted(rows, key=lambda row: (row.last_seen, row.id), reverse=True)

    def file(self, row: EventRow, fingerprint: TextFingerprint, keys: list[str]) -> None:
        """Record a new event, or an event's move; file it under `keys` too."""
        self._rows[row.id] = row
        self._fingerprints[row.id] = fingerprint
        self._newest_of(row.country).touch(row.id)
        for key in keys:
            if self._under(key).touch(row.id):
                self._unsaved.append((row.id, key))

    def save(self, session: Session) -> None:
        """Write the keys events gained in this batch, in one statement (known pairs are
        skipped by the database)."""
        repo.add_event_bands(session, self._unsaved)
        self._unsaved.clear()


class MeasureRecorder:
    """Clusters flagged items into events and queues alerts for the configured routes."""

    def __init__(
        self,
        routes: Sequence[RouteRules],
        window: timedelta = EVENT_WINDOW,
        *,
        targets: TargetReader | None = None,
    ) -> None:
        self.routes = tuple(routes)
        self.window = window
        self.targets = targets if targets is not None else load_targets()

    def record_batch(
        self, session: Session, flagged: Sequence[FlaggedItem], now: datetime
    ) -> list[tuple[int, int]]:
        """Find each flagged item's event and queue its alerts, in order, as if one by one;
        returns (event id, alerts queued) per item.

        The caller records the items' event ids (in bulk, with the rest of the batch).
        """
        if not flagged:
            return []
        probes = [self.probe(f.entry, f.assessment, now) for f in flagged]
        events = BatchEvents.load(session, probes)
        recorded = [
            self._record(session, events, item, probe, now)
            for item, probe in zip(flagged, probes, strict=True)
        ]
        events.save(session)
        return recorded

    def probe(self, entry: Entry, assessment: Assessment, now: datetime) -> _Probe:
        """A flagged item as clustering sees it: fingerprint, targets, lookup keys, windows."""
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
            targets=self.targets.read(entry.title, entry.summary, categories),
        )
        return _Probe(
            item,
            text_keys(assessment.country, categories, fingerprint),
            seen - self.window,
            identity_lookup_keys(assessment.country, categories, item.targets),
            # A measure in force stays open to its identity for months (identity_window).
            seen - max(self.window, LONGEST_WINDOW),
        )

    def _record(
        self,
        session: Session,
        events: BatchEvents,
        flagged: FlaggedItem,
        probe: _Probe,
        now: datetime,
    ) -> tuple[int, int]:
        change = self._assign_event(session, events, probe, flagged.assessment.score)
        if change.kind is None:
            return change.event.id, 0
        message = self._message(flagged, change)
        key = f"event:{change.event.id}:{change.kind}"
        if change.kind == "update":
            key += f":{change.event.stage}"
        queued = self.queue(
            session, message, key, now, event_id=change.event.id, item_id=flagged.item_id
        )
        return change.event.id, queued

    def _message(self, flagged: FlaggedItem, change: EventChange) -> AlertMessage:
        """What recipients read: the measure in one line, the deciding sentence, the source."""
        entry, assessment, event = flagged.entry, flagged.assessment, change.event
        quote = evidence_quote(entry.title, entry.summary, assessment.matched_terms)
        return AlertMessage(
            kind=str(change.kind),
            title=entry.title,
            link=entry.url,
            source=flagged.feed_name,
            country=event.country,
            categories=tuple(event.categories),
            stage=event.stage,
            score=assessment.score,
            matched_terms=assessment.matched_terms,
            evidence=assessment.evidence,
            published=entry.published,
            other_sources=max(event.item_count - 1, 0),
            previous_stage=change.previous_stage,
            targets=tuple(self.targets.label(t) for t in event.targets),
            quote=quote.text,
            quote_marks=quote.marks,
            event_id=event.id,
        )

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
                targets=item.targets.ids(),
                stage_changed_at=item.published,
            )
            session.add(event)
            session.flush()
            events.file(event, item.fingerprint, probe.all_keys)
            return EventChange(event, "new")
        event = events.row(match.event_id)
        event.last_seen = max(event.last_seen, item.published)
        event.item_count += 1
        event.max_score = max(event.max_score, score)
        self._carry_forward(events, event, item, match)
        move = stage_move(
            event.stage,
            item.stage,
            event_first_seen=event.first_seen,
            stage_since=event.stage_changed_at or event.first_seen,
            published=item.published,
        )
        if move is None:
            return EventChange(event, None)
        previous, event.stage = event.stage, move.stage
        event.stage_changed_at = max(item.published, event.stage_changed_at or item.published)
        return EventChange(event, "update" if move.alert else None, previous)

    @staticmethod
    def _carry_forward(
        events: BatchEvents, event: EventRow, item: ItemForClustering, match: Match
    ) -> None:
        """Let the event follow its newest wording, without letting it swallow other measures.

        Only a near-duplicate copy, or a report of the same identity, may widen what the event
        is about (its categories, key terms and targets); a looser follow-up just moves the
        text signature. Otherwise every joined item would add terms and categories until one
        event matched every measure of a country.
        """
        stored = events.fingerprint(event)
        if match.near_duplicate or match.same_identity:
            event.categories = sorted(set(event.categories) | item.categories)
            moved = merge_fingerprints(stored, item.fingerprint)
            targets = TargetSet.from_ids(event.targets).merged(item.targets)
            event.targets = targets.ids()
        else:
            moved = TextFingerprint(item.fingerprint.signature, stored.terms)
            targets = TargetSet.from_ids(event.targets)
        event.fingerprint = moved.to_bytes()
        # The event stays filed under its old keys too: the follow-ups of either wording.
        keys = lookup_keys(event.country, frozenset(event.categories), moved, targets)
        events.file(event, moved, keys)

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
    country: str | None,
    categories: frozenset[str],
    fingerprint: TextFingerprint,
    targets: TargetSet = NO_TARGETS,
) -> list[str]:
    """The indexed keys an event is filed under and an item is looked up by: its text keys
    and its identity keys."""
    return text_keys(country, categories, fingerprint) + identity_lookup_keys(
        country, categories, targets
    )


def text_keys(
    country: str | None, categories: frozenset[str], fingerprint: TextFingerprint
) -> list[str]:
    """Keys of the text, scoped by country as matching requires: the fingerprint's LSH bands
    (near-duplicate copies) and one per (category, key term) pair (follow-ups that name no
    target but keep a law or decree). Hashed, so every key fits the column."""
    scope = country or "--"
    keys = [f"{scope}|{band}" for band in band_keys(fingerprint)]
    for category in sorted(categories):
        for term in sorted(fingerprint.terms):
            keys.append(f"{scope}|k:{_digest(f'{category}|{term}')}")
    return keys


def identity_lookup_keys(
    country: str | None, categories: frozenset[str], targets: TargetSet
) -> list[str]:
    """Keys of the measure's identity (its kind and target, in a named country): every
    report of it is filed under them, however worded."""
    scope = country or "--"
    return [f"{scope}|i:{_digest(key)}" for key in identity_keys(country, categories, targets)]


def _digest(text: str) -> str:
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


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
        targets=TargetSet.from_ids(row.targets or ()),
    )


def event_source_count(session: Session, event_id: int) -> int:
    """How many sources (items and their syndicated copies) report an event."""
    total = session.scalar(
        select(func.coalesce(func.sum(ItemRow.source_count), 0)).where(ItemRow.event_id == event_id)
    )
    return int(total or 0)
