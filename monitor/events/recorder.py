"""From a flagged item to a measure: join or start an event, then queue the alerts it earns.

The outbox rows are written in the caller's transaction, together with the item, so a crash
can never leave a flagged item without its alerts or an alert without its item.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

from sqlalchemy.orm import Session

from monitor.alerts.outbox import Outbox
from monitor.alerts.quote import evidence_quote
from monitor.alerts.routing import RouteRules
from monitor.domain import AlertMessage, Assessment, Entry
from monitor.events.batch import BatchEvents, Probe
from monitor.events.fingerprint import (
    TextFingerprint,
    band_keys,
    merge_fingerprints,
    text_fingerprint,
)
from monitor.events.identity import (
    LONGEST_WINDOW,
    EventCandidate,
    ItemForClustering,
    Match,
    identity_keys,
    match_event,
    stage_move,
)
from monitor.events.targets import (
    TargetReader,
    TargetSet,
    load_targets,
    target_label,
)
from monitor.store.event_repo import EventRecord

logger = logging.getLogger(__name__)

EVENT_WINDOW = timedelta(days=21)


@dataclass(frozen=True, slots=True)
class EventChange:
    """How an item moved its event (a new measure, a stage update, or just another source),
    and the event as it stood then: later items of the batch may move it further."""

    event: EventRecord
    kind: str | None  # "new", "update" or None
    stage: str
    categories: tuple[str, ...]
    targets: tuple[str, ...]
    reports: int
    previous_stage: str | None = None

    @classmethod
    def of(
        cls, row: EventRecord, kind: str | None, previous_stage: str | None = None
    ) -> EventChange:
        return cls(
            row,
            kind,
            row.stage,
            tuple(row.categories),
            tuple(row.targets),
            row.item_count,
            previous_stage,
        )


@dataclass(frozen=True, slots=True)
class FlaggedItem:
    """A stored item the classifier flagged, waiting for its event and alerts."""

    item_id: int
    feed_id: int
    feed_name: str
    entry: Entry
    assessment: Assessment


class MeasureRecorder:
    """Clusters flagged items into events and queues alerts for the configured routes."""

    def __init__(
        self,
        routes: Sequence[RouteRules],
        window: timedelta = EVENT_WINDOW,
        *,
        targets: TargetReader | None = None,
    ) -> None:
        self.outbox = Outbox(routes)
        self.window = window
        self.targets = targets if targets is not None else load_targets()

    def record_batch(
        self, session: Session, flagged: Sequence[FlaggedItem], now: datetime
    ) -> list[tuple[int, int]]:
        """Find each flagged item's event and queue its alerts, in order, as if one by one;
        returns (event id, alerts queued) per item.

        Events are placed in memory and written once, then the alerts they earned are
        queued; the caller records the items' event ids (in bulk, with the rest of the
        batch), all in the caller's transaction.
        """
        if not flagged:
            return []
        probes = [self.probe(f.entry, f.assessment, now) for f in flagged]
        events = BatchEvents.load(session, probes)
        placed = [
            (self._assign_event(events, probe, item.assessment.score), item)
            for item, probe in zip(flagged, probes, strict=True)
        ]
        events.save(session)
        recorded: list[tuple[int, int]] = []
        for (event, change), item in placed:
            event_id = events.event_id(event)
            queued = 0 if change.kind is None else self._queue_change(session, item, change, now)
            recorded.append((event_id, queued))
        return recorded

    def probe(self, entry: Entry, assessment: Assessment, now: datetime) -> Probe:
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
        return Probe(
            item,
            text_keys(assessment.country, categories, fingerprint),
            seen - self.window,
            identity_lookup_keys(assessment.country, categories, item.targets),
            # A measure in force stays open to its identity for months (identity_window).
            seen - max(self.window, LONGEST_WINDOW),
        )

    def _queue_change(
        self, session: Session, flagged: FlaggedItem, change: EventChange, now: datetime
    ) -> int:
        """Queue the alert a new event or a stage update earned, once per route."""
        message = self._message(flagged, change)
        key = f"event:{change.event.id}:{change.kind}"
        if change.kind == "update":
            key += f":{change.stage}"
        return self.outbox.queue(
            session, message, key, now, event_id=change.event.id, item_id=flagged.item_id
        )

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
            categories=change.categories,
            stage=change.stage,
            score=assessment.score,
            matched_terms=assessment.matched_terms,
            evidence=assessment.evidence,
            published=entry.published,
            other_sources=max(change.reports - 1, 0),
            previous_stage=change.previous_stage,
            targets=(label,) if (label := target_label(self.targets, change.targets)) else (),
            quote=quote.text,
            quote_marks=quote.marks,
            event_id=event.id,
        )

    def _assign_event(
        self, events: BatchEvents, probe: Probe, score: float
    ) -> tuple[int, EventChange]:
        """Join the event this item reports, or start a new one (the batch's key for it)."""
        item = probe.item
        match = match_event(item, events.candidates(probe), window=self.window)
        if match is None:
            row = EventRecord(
                id=None,
                country=item.country,
                categories=sorted(item.categories),
                stage=item.stage,
                title=item.title,
                first_seen=item.published,
                last_seen=item.published,
                item_count=1,
                max_score=score,
                targets=item.targets.ids(),
                stage_changed_at=item.published,
                fingerprint=b"",  # written by save, from the batch's fingerprint
            )
            event = events.add(row, item.fingerprint, item.targets, probe.all_keys)
            return event, EventChange.of(row, "new")
        event, row = match.event_id, events.row(match.event_id)
        row.last_seen = max(row.last_seen, item.published)
        row.item_count += 1
        row.max_score = max(row.max_score, score)
        stored = events.candidate(event)  # the event as it stands: fingerprint, targets
        fingerprint, targets = self._carry_forward(stored, row, item, match)
        move = stage_move(
            row.stage,
            item.stage,
            event_first_seen=row.first_seen,
            stage_since=row.stage_changed_at or row.first_seen,
            published=item.published,
        )
        change = EventChange.of(row, None)
        if move is not None:
            previous, row.stage = row.stage, move.stage
            row.stage_changed_at = max(item.published, row.stage_changed_at or item.published)
            change = EventChange.of(row, "update" if move.alert else None, previous)
        # A report that joins adds its terms to the event's keys (the event keeps its old
        # ones), not its sixteen LSH bands: an event that hundreds of outlets cover would be
        # filed under thousands of keys, and a later copy of any report finds the event by
        # its terms or its identity. Measured on the page corpus: the same events either way.
        keys = identity_lookup_keys(row.country, frozenset(row.categories), targets)
        keys += term_keys(row.country, item.categories, item.fingerprint)
        events.moved(event, fingerprint, targets, keys)
        return event, change

    @staticmethod
    def _carry_forward(
        event: EventCandidate, row: EventRecord, item: ItemForClustering, match: Match
    ) -> tuple[TextFingerprint, TargetSet]:
        """Let the event follow its newest wording, without letting it swallow other measures.

        Any report that joins may add targets (a target that did not stop it joining agrees
        with the event's, and gives the event its identity). Only a near-duplicate copy, or
        a report of the same identity, may widen the event's categories and key terms; a
        looser follow-up just moves the text signature. Otherwise every joined item would add
        terms and categories until one event matched every measure of a country.
        """
        stored = event.fingerprint
        targets = event.targets.merged(item.targets)  # the targets of row.targets
        row.targets = targets.ids()
        if match.near_duplicate or match.same_identity:
            row.categories = sorted(set(row.categories) | item.categories)
            return merge_fingerprints(stored, item.fingerprint), targets
        moved = TextFingerprint(item.fingerprint.array, stored.terms)
        return moved, targets


def text_keys(
    country: str | None, categories: frozenset[str], fingerprint: TextFingerprint
) -> list[str]:
    """Keys of the text, scoped by country as matching requires: the fingerprint's LSH bands
    (near-duplicate copies) and its term keys. Hashed, so every key fits the column."""
    scope = country or "--"
    bands = [f"{scope}|{band}" for band in band_keys(fingerprint)]
    return bands + term_keys(country, categories, fingerprint)


def term_keys(
    country: str | None, categories: frozenset[str], fingerprint: TextFingerprint
) -> list[str]:
    """One key per (category, key term) pair: follow-ups that name no target but keep a
    law's, a decree's or a platform's name."""
    return list(_term_keys(country, categories, fingerprint.terms))


@lru_cache(maxsize=16_384)
def _term_keys(
    country: str | None, categories: frozenset[str], terms: frozenset[str]
) -> tuple[str, ...]:
    """`term_keys`, once per distinct (country, categories, terms): reports of one measure
    repeat them (a tuple, so no caller can change the cached value)."""
    scope = country or "--"
    return tuple(
        f"{scope}|k:{_digest(f'{category}|{term}')}"
        for category in sorted(categories)
        for term in sorted(terms)
    )


def identity_lookup_keys(
    country: str | None, categories: frozenset[str], targets: TargetSet
) -> list[str]:
    """Keys of the measure's identity (its kind and target, in a named country): every
    report of it is filed under them, however worded."""
    return list(_identity_lookup_keys(country, categories, targets))


@lru_cache(maxsize=16_384)
def _identity_lookup_keys(
    country: str | None, categories: frozenset[str], targets: TargetSet
) -> tuple[str, ...]:
    """`identity_lookup_keys`, once per distinct identity: every report that joins an event
    asks for its event's keys again."""
    scope = country or "--"
    return tuple(f"{scope}|i:{_digest(key)}" for key in identity_keys(country, categories, targets))


@lru_cache(maxsize=65_536)
def _digest(text: str) -> str:
    """A short stable hash of a key (terms and identities recur across items: cached)."""
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()
