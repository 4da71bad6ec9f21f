"""Queries for clustering: the events a batch of flagged items may join, and the keys
(LSH bands, key terms, identities) events are filed under. A few indexed, bounded statements
per batch of feeds, whatever the number of stored events."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, Select, bindparam, func, select
from sqlalchemy.orm import Session

from monitor.store.models import EventBandRow, EventRow
from monitor.store.repo import chunks, insert_ignoring_conflict, table_of

# How many of a country's newest events a new item is compared with besides those found by
# its keys: a safety net for a follow-up that shares neither wording nor a key term.
NEWEST_EVENTS_CHECKED = 10
# How many of the events filed under an item's keys it is compared with (the newest): an
# item's candidates are at most this many per key, however many events share the key.
KEY_EVENTS_CHECKED = 32


@dataclass(frozen=True, slots=True)
class StoredEvents:
    """What the database holds for a batch of flagged items' clustering, loaded at once."""

    events: list[EventRow]  # those filed under a batch key and each country's newest, once
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
    filed: list[tuple[int, str]] = []
    for key_set, seen_since in ((keys, since), (identity_keys, identity_since or since)):
        for chunk in chunks(sorted(set(key_set)), 500):
            rows = session.execute(_FILED_UNDER, {"keys": chunk, "since": seen_since})
            filed.extend(rows.tuples())
    wanted = {event_id for event_id, _ in filed}
    for country in set(countries):
        statement = _NEWEST_WITHOUT_COUNTRY if country is None else _NEWEST_OF_COUNTRY
        wanted.update(session.scalars(statement, {"since": since, "country": country}))
    events: list[EventRow] = []
    oldest = min(since, identity_since or since)
    for ids in chunks(sorted(wanted), 500):
        events.extend(session.scalars(_EVENTS_SEEN_SINCE, {"ids": ids, "since": oldest}))
    return StoredEvents(events, filed)


# Built once, with bound parameters: building statements per batch (and hashing their
# literal values for the compiled cache) costs more than running them.
def _filed_under() -> Select[int, str]:
    """(event id, key) for the newest KEY_EVENTS_CHECKED events seen since `since` under each
    of `keys`: the rank is computed in the database, so a crowded key costs a scan of its
    index entries there, not rows and objects here."""
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
    return select(ranked.c.event_id, ranked.c.band_key).where(ranked.c.rank <= KEY_EVENTS_CHECKED)


_FILED_UNDER = _filed_under()
_EVENTS_SEEN_SINCE = select(EventRow).where(
    EventRow.id.in_(bindparam("ids", expanding=True)), EventRow.last_seen >= bindparam("since")
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
