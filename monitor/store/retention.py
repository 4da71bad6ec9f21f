"""Pruning by age (feeds.yaml `retention:`), in batches that never hold the writers up long.

Each batch is its own short transaction: find the key (age, id) of the `batch_size`-th
oldest prunable row (an index range scan of that many entries), then delete the prunable
rows up to that key in one statement. The SQLite writer lock, and PostgreSQL's row locks,
are held for one batch only, so a poll that commits in the meantime waits at most that
long. The keys walk forward from batch to batch: rows that must stay (an item in an event)
are stepped over once per run, not re-read by every batch, and a range, not a list of ids,
keeps each statement the same size whatever the batch size. A run stops when its time
budget is spent; the next run goes on from the oldest rows left.

Never deleted by age: events, items grouped into an event, items an analyst gave feedback
on or an alert points to, alerts not yet sent (pending, sending, digest) and the alerts of
an event reported within the alerts' retention. An item goes with
its assessment and item_sources (ON DELETE CASCADE, enforced on SQLite by make_engine's
foreign_keys pragma).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, delete, exists, or_, select
from sqlalchemy.orm import InstrumentedAttribute, Session, sessionmaker

from monitor.config.retention import RetentionSpec
from monitor.store.models import (
    AlertRow,
    AssessmentRow,
    EventRow,
    FeedbackRow,
    FetchLogRow,
    ItemRow,
)

# SQLite: the pause after each batch, as long as the batch took up to this. A poll waiting
# for the writer lock retries on SQLite's busy-handler schedule (every 25-100 ms once it has
# waited a while); without a pause the next batch takes the lock back first, and the poll
# waited for several batches in a row (230 ms measured, against one batch's 65-125 ms).
MAX_PAUSE_S = 0.1

# Alerts in these states are done with: delivered (or folded into a sent digest), or given up.
FINISHED_ALERTS = ("sent", "dead")

Key = tuple[datetime, int]


@dataclass(frozen=True)
class _Target:
    """One kind of prunable row: its table's age and id columns, and what must stay."""

    model: type[AlertRow | AssessmentRow | FetchLogRow | ItemRow]
    age: InstrumentedAttribute[datetime]
    id: InstrumentedAttribute[int]
    # Conditions a row must also meet to go (besides its age), given the run's cutoff.
    prunable: Callable[[datetime], Sequence[ColumnElement[bool]]] = lambda _cutoff: ()


@dataclass
class PruneReport:
    """What one run deleted, per kind of row, and whether it got through the backlog."""

    deleted: dict[str, int] = field(default_factory=dict)
    batches: int = 0
    # False: the time budget ran out with rows left; the next run goes on.
    finished: bool = True
    seconds: float = 0.0
    # The longest transaction: about how long a poll's commit may have waited for it.
    longest_batch_s: float = 0.0

    @property
    def total(self) -> int:
        return sum(self.deleted.values())


def _unreferenced_item(item_id: InstrumentedAttribute[int]) -> list[ColumnElement[bool]]:
    """Nobody's work rests on the item: no feedback on it, no alert points to it."""
    return [
        ~exists().where(FeedbackRow.item_id == item_id),
        ~exists().where(AlertRow.item_id == item_id),
    ]


def _alerts_prunable(cutoff: datetime) -> list[ColumnElement[bool]]:
    # An event still being reported keeps its alerts: they are the record of what its
    # routes were told, and the (route, dedup key) that stops them being told twice.
    active_event = exists().where(EventRow.id == AlertRow.event_id, EventRow.last_seen >= cutoff)
    return [AlertRow.status.in_(FINISHED_ALERTS), ~active_event]


def _items_prunable(cutoff: datetime) -> list[ColumnElement[bool]]:
    return [ItemRow.event_id.is_(None), *_unreferenced_item(ItemRow.id)]


def _assessments_prunable(cutoff: datetime) -> list[ColumnElement[bool]]:
    # Only the classifier's reasons for dismissing an item; its item stays (until `items`),
    # and the whole of what an event holds or an analyst or an alert refers to stays.
    loose_item = exists().where(
        ItemRow.id == AssessmentRow.item_id,
        ItemRow.event_id.is_(None),
        *_unreferenced_item(ItemRow.id),
    )
    return [AssessmentRow.relevant.is_(False), loose_item]


TARGETS: dict[str, _Target] = {
    # Alerts first: an item an old alert pointed to can then go in the same run.
    "alerts": _Target(AlertRow, AlertRow.created_at, AlertRow.id, _alerts_prunable),
    "items": _Target(ItemRow, ItemRow.fetched_at, ItemRow.id, _items_prunable),
    "assessments": _Target(
        AssessmentRow,
        AssessmentRow.created_at,
        AssessmentRow.id,
        _assessments_prunable,
    ),
    "fetch_log": _Target(FetchLogRow, FetchLogRow.started_at, FetchLogRow.id),
}


def cutoffs(spec: RetentionSpec, now: datetime) -> dict[str, datetime]:
    """Rows older than these go, per kind."""
    ages: dict[str, timedelta] = {
        "alerts": spec.alerts,
        "items": spec.items,
        "assessments": spec.assessments,
        "fetch_log": spec.fetch_log,
    }
    return {name: now - age for name, age in ages.items()}


def prune(
    sessions: sessionmaker[Session],
    spec: RetentionSpec,
    now: datetime,
    *,
    monotonic: Callable[[], float] = time.monotonic,
    stop: Callable[[], bool] = lambda: False,
    sleep: Callable[[float], None] = time.sleep,
) -> PruneReport:
    """Delete what `spec` says is old, batch by batch, until done or the budget is spent."""
    report = PruneReport(deleted=dict.fromkeys(TARGETS, 0))
    if not spec.enabled:
        return report
    started = monotonic()
    budget = spec.time_budget.total_seconds()
    limits = cutoffs(spec, now)
    one_writer = sessions.kw["bind"].dialect.name == "sqlite"
    for name, target in TARGETS.items():
        cursor: Key | None = None
        while True:
            if stop() or monotonic() - started >= budget:
                report.finished = False
                report.seconds = monotonic() - started
                return report
            batch_started = monotonic()
            deleted, cursor = _batch(sessions, target, limits[name], cursor, spec.batch_size)
            took = monotonic() - batch_started
            report.longest_batch_s = max(report.longest_batch_s, took)
            if one_writer and cursor is not None:
                sleep(min(took, MAX_PAUSE_S))  # the polls' turn with the writer lock
            report.batches += 1
            report.deleted[name] += deleted
            if cursor is None:
                break
    report.seconds = monotonic() - started
    return report


def _batch(
    sessions: sessionmaker[Session],
    target: _Target,
    cutoff: datetime,
    after: Key | None,
    size: int,
) -> tuple[int, Key | None]:
    """Delete one batch past `after`; the key it ended at, or None when none are left."""
    where = [target.age < cutoff, *target.prunable(cutoff)]
    if after is not None:
        where.append(_past(target, after))
    with sessions.begin() as session:
        # The key of the size-th oldest candidate: the batch ends there. Fewer than size
        # left: this batch takes them all and the walk ends.
        last = session.execute(
            select(target.age, target.id)
            .where(*where)
            .order_by(target.age, target.id)
            .offset(size - 1)
            .limit(1)
        ).first()
        upto = None if last is None else (last[0], last[1])
        statement = delete(target.model).where(*where)
        if upto is not None:
            statement = statement.where(_upto(target, upto))
        # The DELETE applies the conditions again: a row that stopped qualifying since the
        # SELECT (an item just linked to an event, an alert just retried) stays.
        result = session.connection().execute(statement)
        deleted = max(result.rowcount, 0)
    if deleted and sessions.kw["bind"].dialect.name == "sqlite":
        _checkpoint(sessions)
    return deleted, upto


def _checkpoint(sessions: sessionmaker[Session]) -> None:
    """Copy the WAL back into the database file now, on the prune's time.

    Otherwise the commit that takes the WAL past SQLite's autocheckpoint size does it, and
    after a few batches of deletes that is a poll's commit: it measured up to a second. A
    PASSIVE checkpoint takes no writer lock, so polls go on committing meanwhile.
    """
    with sessions() as session:
        session.connection().exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")


def _past(target: _Target, key: Key) -> ColumnElement[bool]:
    """(age, id) > key, written so the index on age can start its range at key's age."""
    at, row_id = key
    return and_(target.age >= at, or_(target.age > at, target.id > row_id))


def _upto(target: _Target, key: Key) -> ColumnElement[bool]:
    """(age, id) <= key, written so the index on age can end its range at key's age: a
    negated _past would leave the range open, and each batch would read every older row."""
    at, row_id = key
    return and_(target.age <= at, or_(target.age < at, target.id <= row_id))
