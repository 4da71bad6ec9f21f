"""The events one batch of flagged items may join, held in memory while the batch is placed.

Loaded in a few statements (`event_repo.stored_events`), then kept current as the batch starts and
moves events, so placing an item costs no query; written back once, by `save`: new events in
one insert, moved ones in one update, the keys they gained in one insert. Events are plain
records (`EventRecord`), not ORM rows, which cost several times as much to load. Events the
batch starts have no database id until then, so the batch names every event by a key of its
own (the database id for a stored event, a negative number for a new one); `event_id`
translates after `save`.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from operator import attrgetter

from sqlalchemy.orm import Session

from monitor.events.fingerprint import TextFingerprint
from monitor.events.identity import EventCandidate, ItemForClustering
from monitor.events.targets import TargetSet
from monitor.store import event_repo
from monitor.store.event_repo import EventRecord

__all__ = ["BatchEvents", "Probe"]

_NEWEST = attrgetter("last_seen", "event_id")  # the candidates' order, newest first


@dataclass(frozen=True, slots=True)
class Probe:
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
    """The events most recently filed or moved under one key, newest last, at most
    `capacity`.

    Events only move forward in time, so the order in which they were last touched is the
    order of their last_seen, and keeping the newest few costs O(1) per touch, however many
    events a key (or a country) has gathered.
    """

    __slots__ = ("_capacity", "_ids")

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._ids: OrderedDict[int, None] = OrderedDict()

    @classmethod
    def of(cls, events: Sequence[int], capacity: int) -> _Recent:
        """The newest `capacity` of `events` (oldest first), as touching each in turn would."""
        recent = cls(capacity)
        recent._ids = ids = OrderedDict.fromkeys(events)
        while len(ids) > capacity:
            ids.popitem(last=False)
        return recent

    def touch(self, event: int) -> bool:
        """Mark an event as the newest; False if it was already filed here."""
        ids = self._ids
        if event in ids:
            ids.move_to_end(event)
            return False
        ids[event] = None
        if len(ids) > self._capacity:
            ids.popitem(last=False)
        return True

    def __iter__(self) -> Iterator[int]:
        return reversed(self._ids)

    def members(self) -> Iterable[int]:
        """The events filed here, in no particular order (cheaper than newest first)."""
        return self._ids.keys()


class BatchEvents:
    """What one query per item would return, for a whole batch: the newest
    KEY_EVENTS_CHECKED events filed under each of an item's keys (its country's only, seen
    within the key's window) and its country's newest NEWEST_EVENTS_CHECKED. Both are bounded
    lists of the newest, so an item's candidates are bounded however many events the batch
    or the database holds.
    """

    def __init__(self, stored: event_repo.StoredEvents) -> None:
        # Stored events are named by their database ids.
        self._rows: dict[int, EventRecord] = {
            row.id: row for row in stored.events if row.id is not None
        }
        self._candidates: dict[int, EventCandidate] = {}
        self._filed_under: dict[str, _Recent] = {}
        self._newest: dict[str | None, _Recent] = {}
        self._moved: set[int] = set()  # events whose fingerprint changed: written by save
        self._new: list[int] = []
        self._unsaved: list[tuple[int, str]] = []
        # Oldest first, so the newest end up at the head of each bounded list.
        by_age = sorted(self._rows.items(), key=lambda pair: (pair[1].last_seen, pair[0]))
        age = {event_id: position for position, (event_id, _) in enumerate(by_age)}
        for event_id, row in by_age:
            self._newest_of(row.country).touch(event_id)
        # Each key's events in order of age, as touching them oldest first would leave them:
        # a heavy batch loads hundreds of thousands of (event, key) pairs.
        per_key: dict[str, list[int]] = {}
        for event_id, key in stored.filed:
            if event_id in age:
                per_key.setdefault(key, []).append(event_id)
        for key, events in per_key.items():
            events.sort(key=age.__getitem__)
            self._filed_under[key] = _Recent.of(events, event_repo.KEY_EVENTS_CHECKED)

    @classmethod
    def load(cls, session: Session, probes: Sequence[Probe]) -> BatchEvents:
        stored = event_repo.stored_events(
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
            found = self._filed_under[key] = _Recent(event_repo.KEY_EVENTS_CHECKED)
        return found

    def _newest_of(self, country: str | None) -> _Recent:
        found = self._newest.get(country)
        if found is None:
            found = self._newest[country] = _Recent(event_repo.NEWEST_EVENTS_CHECKED)
        return found

    @property
    def loaded(self) -> list[EventRecord]:
        """Every event the batch holds."""
        return list(self._rows.values())

    def row(self, event: int) -> EventRecord:
        return self._rows[event]

    def candidate(self, event: int) -> EventCandidate:
        """The event as the matcher sees it (built once, rebuilt when the event moves)."""
        found = self._candidates.get(event)
        if found is None:
            row = self._rows[event]
            found = self._candidates[event] = _candidate_of(
                event,
                row,
                _stored_fingerprint(row.fingerprint),
                _stored_targets(tuple(row.targets)),
            )
        return found

    def _filed(self, keys: Iterable[str]) -> set[int]:
        """The events filed under any of `keys` (the newest of each)."""
        found: set[int] = set()
        for key in keys:
            recent = self._filed_under.get(key)
            if recent is not None:
                found.update(recent.members())
        return found

    def candidates(self, probe: Probe) -> list[EventCandidate]:
        """The events a query for this item would return; newest first."""
        country = probe.item.country
        text = self._filed(probe.keys)
        text.update(self._newest_of(country).members())
        identity = self._filed(probe.identity) if probe.identity else set()
        text -= identity
        # Heavy batches ask for 40-60 events per item, so the matcher's views are looked up
        # in the dict first and built only on a miss.
        built, build = self._candidates, self.candidate
        chosen: list[EventCandidate] = []
        # A key is scoped by country, but a hash can collide: keep the item's country only.
        # An event found both ways is held to the longer window, its identity's.
        for events, since in ((identity, probe.identity_since), (text, probe.since)):
            for event in events:
                found = built.get(event) or build(event)
                if found.last_seen >= since and found.country == country:
                    chosen.append(found)
        chosen.sort(key=_NEWEST, reverse=True)
        return chosen

    def add(
        self, row: EventRecord, fingerprint: TextFingerprint, targets: TargetSet, keys: list[str]
    ) -> int:
        """A new event of this batch, filed under `keys`; returns the batch's key for it."""
        event = -(len(self._new) + 1)
        self._new.append(event)
        self._rows[event] = row
        self.moved(event, fingerprint, targets, keys)
        return event

    def moved(
        self, event: int, fingerprint: TextFingerprint, targets: TargetSet, keys: list[str]
    ) -> None:
        """An event changed (a report joined it): refile it as the newest under `keys`."""
        row = self._rows[event]
        self._candidates[event] = _candidate_of(event, row, fingerprint, targets)
        self._moved.add(event)
        self._newest_of(row.country).touch(event)
        for key in keys:
            if self._under(key).touch(event):
                self._unsaved.append((event, key))

    def fingerprint(self, event: int) -> TextFingerprint:
        return self.candidate(event).fingerprint

    def event_id(self, event: int) -> int:
        """The database id of a batch event (after `save`, for the batch's new ones)."""
        event_id = self._rows[event].id
        if event_id is None:
            raise RuntimeError("a new event of the batch has no id before save")
        return event_id

    def save(self, session: Session) -> None:
        """Write the batch's events: fingerprints serialized once, the new events in one
        insert, the moved stored ones in one update, then the keys they gained in one
        statement (pairs already filed are skipped by the database)."""
        for event in self._moved:
            self._rows[event].fingerprint = self._candidates[event].fingerprint.to_bytes()
        event_repo.insert_events(session, [self._rows[event] for event in self._new])
        moved = [self._rows[event] for event in self._moved if event > 0]  # stored: ids > 0
        event_repo.update_events(session, sorted(moved, key=lambda row: row.id or 0))
        event_repo.add_event_bands(session, [(self.event_id(e), key) for e, key in self._unsaved])
        self._moved.clear()
        self._new.clear()
        self._unsaved.clear()


# Every batch loads the events its items may join, and a busy cycle's batches load mostly
# the same ones: their fingerprints and targets are read once per distinct value, not once
# per batch (both are immutable). Bounded: under 1 kB per fingerprint.
@lru_cache(maxsize=4096)
def _stored_fingerprint(data: bytes) -> TextFingerprint:
    return TextFingerprint.from_bytes(data)


@lru_cache(maxsize=4096)
def _stored_targets(ids: tuple[str, ...]) -> TargetSet:
    return TargetSet.from_ids(ids)


def _candidate_of(
    event: int, row: EventRecord, fingerprint: TextFingerprint, targets: TargetSet
) -> EventCandidate:
    """The matcher's view of a batch event: its row's fields, its current fingerprint."""
    return EventCandidate(
        event_id=event,
        country=row.country,
        categories=frozenset(row.categories),
        stage=row.stage,
        fingerprint=fingerprint,
        first_seen=row.first_seen,
        last_seen=row.last_seen,
        title=row.title,
        targets=targets,
    )
