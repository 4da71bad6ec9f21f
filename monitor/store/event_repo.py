"""Queries for clustering: the events a batch of flagged items may join, and the keys
(LSH bands, key terms, identities) events are filed under. A few indexed, bounded statements
per batch of feeds, whatever the number of stored events."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    String,
    bindparam,
    cast,
    func,
    insert,
    select,
    type_coerce,
    update,
)
from sqlalchemy.orm import Session

from monitor.store.models import EventBandRow, EventRow, utc_as_read
from monitor.store.repo import chunks, insert_ignoring_conflict, table_of

# How many of a country's newest events a new item is compared with besides those found by
# its keys: a safety net for a follow-up that shares neither wording nor a key term.
NEWEST_EVENTS_CHECKED = 10
# How many of the events filed under an item's keys it is compared with (the newest): an
# item's candidates are at most this many per key, however many events share the key.
KEY_EVENTS_CHECKED = 32


@dataclass(slots=True)
class EventRecord:
    """An events row as plain data, which clustering changes in memory and writes back in
    bulk (`insert_events`, `update_events`). Not an ORM object: a busy batch loads a thousand
    and more candidate events and moves few of them, and ORM rows cost several times as much
    to load as these."""

    id: int | None  # None until inserted
    country: str | None
    categories: list[str]
    stage: str
    title: str
    fingerprint: bytes
    first_seen: datetime
    last_seen: datetime
    item_count: int
    max_score: float
    targets: list[str]
    stage_changed_at: datetime | None


_EVENTS = table_of(EventRow)
# The columns of EventRecord, in its order (the record is built from a row positionally).
_RECORD_FIELDS = tuple(f.name for f in fields(EventRecord))
_RECORD_COLUMNS = [_EVENTS.c[name] for name in _RECORD_FIELDS]
# What clustering changes on an event it moves.
_MOVED_COLUMNS = (
    "stage", "fingerprint", "last_seen", "item_count", "max_score", "categories", "targets",
    "stage_changed_at",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class StoredEvents:
    """What the database holds for a batch of flagged items' clustering, loaded at once."""

    events: list[EventRecord]  # those filed under a batch key and each country's newest, once
    filed: list[tuple[int, str]]  # (event id, key) for every batch key an event is filed under


def stored_events(
    session: Session,
    keys: Iterable[str],
    countries: Iterable[str | None],
    since: datetime,
    *,
    identity_keys: Iterable[str] = (),
    identity_since: datetime | None = None,
) -> StoredEvents:
    """Events a batch of flagged items may join: those seen since `since` and filed under
    one of the batch's lookup keys (keys are country-scoped), each country's newest few, and
    those seen since `identity_since` filed under one of its identity keys (a measure in
    force stays open to its identity for months).

    A few indexed, bounded statements per batch, not per item: the band index answers the
    keys, the (country, last_seen) index the newest. The cost does not grow with the stored
    events. The caller keeps the result current as the batch adds and moves events.
    """
    # Core statements on the session's connection: no ORM rows, nothing to autoflush (events
    # and their keys are written in Core too).
    connection = session.connection()
    filed: list[tuple[int, str]] = []
    for key_set, seen_since in ((keys, since), (identity_keys, identity_since or since)):
        for chunk in chunks(sorted(set(key_set)), 500):
            per_key = connection.execute(_FILED_UNDER, {"keys": chunk, "since": seen_since})
            for key, event_ids in per_key.tuples():
                filed.extend((int(event_id), key) for event_id in event_ids.split(","))
    wanted = {event_id for event_id, _ in filed}
    for country in set(countries):
        statement = _NEWEST_WITHOUT_COUNTRY if country is None else _NEWEST_OF_COUNTRY
        wanted.update(connection.execute(statement, {"since": since, "country": country}).scalars())
    events: list[EventRecord] = []
    oldest = min(since, identity_since or since)
    for ids in chunks(sorted(wanted), 500):
        rows = connection.execute(_EVENTS_SEEN_SINCE, {"ids": ids, "since": oldest})
        events.extend(_record_of(*row) for row in rows.tuples())
    return StoredEvents(events, filed)


def _record_of(
    id: int,
    country: str | None,
    categories: Any,
    stage: str,
    title: str,
    fingerprint: bytes,
    first_seen: Any,
    last_seen: Any,
    item_count: int,
    max_score: float,
    targets: Any,
    stage_changed_at: Any,
) -> EventRecord:
    """An EventRecord from a row of _EVENTS_SEEN_SINCE, whose list and time columns come as
    the driver gives them (text on SQLite): decoded here, as the column types would, at a
    fraction of the cost (a heavy cycle loads a hundred thousand event rows)."""
    return EventRecord(
        id,
        country,
        _list_of(categories),
        stage,
        title,
        fingerprint,
        _utc(first_seen),
        _utc(last_seen),
        item_count,
        max_score,
        _list_of(targets),
        None if stage_changed_at is None else _utc(stage_changed_at),
    )


def _list_of(value: Any) -> list[str]:
    """A JSON list column's value: text (SQLite) or already decoded (PostgreSQL's driver)."""
    return list(_json_list(value) if isinstance(value, str) else value or ())


@lru_cache(maxsize=4096)
def _json_list(text: str) -> tuple[str, ...]:
    """Decoded once per distinct text: an event's categories and targets recur across
    events (a tuple, so the cached value cannot be changed by a caller)."""
    return tuple(json.loads(text) or ())


def _utc(value: Any) -> datetime:
    """What UTCDateTime reads, from SQLite's text or the driver's datetime."""
    return utc_as_read(datetime.fromisoformat(value) if isinstance(value, str) else value)


def insert_events(session: Session, events: Sequence[EventRecord]) -> None:
    """Insert new events in one statement and give each record its id."""
    if not events:
        return
    rows = [
        {name: getattr(event, name) for name in _RECORD_FIELDS if name != "id"} for event in events
    ]
    ids = session.connection().execute(_INSERT_EVENTS, rows).scalars().all()
    for event, event_id in zip(events, ids, strict=True):
        event.id = event_id


def update_events(session: Session, events: Sequence[EventRecord]) -> None:
    """Write back what clustering changed on stored events, in one executemany."""
    rows = [
        {"event_id": event.id, **{f"new_{name}": getattr(event, name) for name in _MOVED_COLUMNS}}
        for event in events
    ]
    if rows:
        session.connection().execute(_UPDATE_EVENTS, rows)


# Built once, with bound parameters: building statements per batch (and hashing their
# literal values for the compiled cache) costs more than running them.
def _filed_under() -> Select[str, str]:
    """(key, "id,id,...") for the newest KEY_EVENTS_CHECKED events seen since `since` under
    each of `keys`: the rank is computed in the database, so a crowded key costs a scan of its
    index entries there, not rows and objects here. One row per key, not per (event, key):
    the sqlite3 module lets go of the GIL for every row it steps to, and the writer, beside
    the fetch threads, waits to get it back (a heavy batch's keys hold ~6,000 such pairs)."""
    ranked = (
        select(
            EventBandRow.event_id,
            EventBandRow.band_key,
            func.row_number()
            .over(
                partition_by=EventBandRow.band_key,
                order_by=(EventRow.last_seen.desc(), EventRow.id.desc()),
            )
            .label("rank"),
        )
        .join(EventRow, EventRow.id == EventBandRow.event_id)
        .where(
            EventBandRow.band_key.in_(bindparam("keys", expanding=True)),
            EventRow.last_seen >= bindparam("since"),
        )
        .subquery()
    )
    return (
        select(ranked.c.band_key, func.aggregate_strings(cast(ranked.c.event_id, String), ","))
        .where(ranked.c.rank <= KEY_EVENTS_CHECKED)
        .group_by(ranked.c.band_key)
    )


_FILED_UNDER = _filed_under()
# The columns of EventRecord, with no result processing for the list and time columns (see
# _record_of).
_RAW_COLUMNS = {
    name: String()
    for name in ("categories", "targets", "first_seen", "last_seen", "stage_changed_at")
}
_EVENTS_SEEN_SINCE = select(
    *(
        type_coerce(column, _RAW_COLUMNS[column.name]) if column.name in _RAW_COLUMNS else column
        for column in _RECORD_COLUMNS
    )
).where(
    _EVENTS.c.id.in_(bindparam("ids", expanding=True)), _EVENTS.c.last_seen >= bindparam("since")
)
# In the parameters' order, so each new record gets its own id back.
_INSERT_EVENTS = insert(_EVENTS).returning(_EVENTS.c.id, sort_by_parameter_order=True)
_UPDATE_EVENTS = (
    update(_EVENTS)
    .where(_EVENTS.c.id == bindparam("event_id"))
    .values({name: bindparam(f"new_{name}") for name in _MOVED_COLUMNS})
)


def _newest_statement(same_country: ColumnElement[bool]) -> Select[int]:
    return (
        select(EventRow.id)
        .where(same_country, EventRow.last_seen >= bindparam("since"))
        .order_by(EventRow.last_seen.desc(), EventRow.id)
        .limit(NEWEST_EVENTS_CHECKED)
    )


_NEWEST_OF_COUNTRY = _newest_statement(EventRow.country == bindparam("country"))
_NEWEST_WITHOUT_COUNTRY = _newest_statement(EventRow.country.is_(None))


def add_event_bands(session: Session, filed: Iterable[tuple[int, str]]) -> None:
    """File events under lookup keys ((event id, key) pairs); pairs already filed are
    skipped by the database."""
    rows = [{"event_id": event_id, "band_key": key} for event_id, key in sorted(set(filed))]
    if not rows:
        return
    statement = insert_ignoring_conflict(session, table_of(EventBandRow), ["event_id", "band_key"])
    # executemany of one cached statement: a multi-row VALUES statement is compiled anew on
    # every call, which cost more than the rows themselves.
    session.connection().execute(statement, rows)
