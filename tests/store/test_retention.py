"""Pruning by age: what is old goes, what is young or referenced stays, in bounded batches."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, func, insert, select
from sqlalchemy.orm import InstrumentedAttribute, Session, sessionmaker

from monitor.config.retention import RetentionSpec
from monitor.config.schema import parse_config_text
from monitor.errors import ConfigError
from monitor.store.db import make_engine, make_sessions
from monitor.store.models import (
    AlertRow,
    AssessmentRow,
    EventRow,
    FeedbackRow,
    FeedRow,
    FetchLogRow,
    ItemRow,
    ItemSourceRow,
)
from monitor.store.retention import prune

NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
OLD = NOW - timedelta(days=400)  # past every default age
YOUNG = NOW - timedelta(days=1)


@pytest.fixture
def sessions(db_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(db_url)
    yield make_sessions(engine)
    engine.dispose()


def _feed(session: Session) -> int:
    row = FeedRow(name="f", url="http://127.0.0.1/f", next_poll_at=NOW, created_at=NOW)
    session.add(row)
    session.flush()
    return row.id


def _event(session: Session, last_seen: datetime) -> int:
    row = EventRow(
        country="VN",
        categories=["shutdown"],
        stage="enacted",
        title="t",
        fingerprint=b"x",
        first_seen=last_seen,
        last_seen=last_seen,
    )
    session.add(row)
    session.flush()
    return row.id


def _item(
    session: Session,
    feed_id: int,
    fetched_at: datetime,
    *,
    relevant: bool = False,
    event_id: int | None = None,
) -> int:
    guid = f"g{session.scalar(select(func.count(ItemRow.id)))}-{fetched_at.isoformat()}"
    row = ItemRow(
        feed_id=feed_id,
        guid=guid,
        url=None,
        title="t",
        summary="s",
        published=fetched_at,
        fetched_at=fetched_at,
        content_hash=guid[:64],
        event_id=event_id,
    )
    session.add(row)
    session.flush()
    session.add(ItemSourceRow(item_id=row.id, feed_id=feed_id, guid=guid, seen_at=fetched_at))
    session.add(
        AssessmentRow(
            item_id=row.id,
            relevant=relevant,
            score=0.9 if relevant else 0.1,
            categories=[],
            stage="reported",
            matched_terms=[],
            evidence=[],
            model_version="m",
            created_at=fetched_at,
        )
    )
    session.flush()
    return row.id


def _alert(
    session: Session,
    created_at: datetime,
    status: str,
    *,
    item_id: int | None = None,
    event_id: int | None = None,
) -> int:
    row = AlertRow(
        route="r",
        dedup_key=f"k{created_at.isoformat()}-{status}-{item_id}-{event_id}",
        kind="new",
        event_id=event_id,
        item_id=item_id,
        status=status,
        payload={},
        due_at=created_at,
        created_at=created_at,
    )
    session.add(row)
    session.flush()
    return row.id


def _logs(session: Session, feed_id: int, started_at: datetime, count: int) -> None:
    session.execute(
        insert(FetchLogRow),
        [{"feed_id": feed_id, "started_at": started_at, "outcome": "ok"}] * count,
    )


def _ids(session: Session, column: InstrumentedAttribute[int]) -> set[int]:
    return set(session.scalars(select(column)))


def test_old_goes_young_and_referenced_stay(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        feed = _feed(session)
        old_loose = _item(session, feed, OLD)
        young = _item(session, feed, YOUNG)
        in_event = _item(session, feed, OLD, event_id=_event(session, OLD))
        with_feedback = _item(session, feed, OLD)
        session.add(
            FeedbackRow(item_id=with_feedback, relevant=True, categories=[], created_at=OLD)
        )
        pending_alert_item = _item(session, feed, OLD)
        _alert(session, OLD, "pending", item_id=pending_alert_item)
        old_sent = _alert(session, OLD, "sent")
        old_dead = _alert(session, OLD, "dead")
        young_sent = _alert(session, YOUNG, "sent")
        active = _alert(session, OLD, "sent", event_id=_event(session, YOUNG))
        # Irrelevant 100 days ago: its assessment goes (90 d), the item stays (365 d).
        dismissed = _item(session, feed, NOW - timedelta(days=100))
        kept_relevant = _item(session, feed, NOW - timedelta(days=100), relevant=True)
        _logs(session, feed, NOW - timedelta(days=31), 7)
        _logs(session, feed, NOW - timedelta(days=29), 3)

    report = prune(sessions, RetentionSpec(), NOW)

    assert report.finished
    assert report.deleted == {"alerts": 2, "items": 1, "assessments": 1, "fetch_log": 7}
    with sessions() as session:
        items = _ids(session, ItemRow.id)
        assert old_loose not in items
        assert {young, in_event, with_feedback, pending_alert_item, dismissed} <= items
        assert session.scalar(select(func.count(FetchLogRow.id))) == 3
        assert _ids(session, AlertRow.id) >= {young_sent, active}
        assert not {old_sent, old_dead} & _ids(session, AlertRow.id)
        assessed = set(session.scalars(select(AssessmentRow.item_id)))
        assert dismissed not in assessed and old_loose not in assessed
        assert {young, in_event, with_feedback, kept_relevant} <= assessed
        # The item's list of sources went with it (ON DELETE CASCADE).
        sources = set(session.scalars(select(ItemSourceRow.item_id)))
        assert old_loose not in sources and young in sources


def test_an_item_an_old_alert_pointed_to_goes_with_it(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        item = _item(session, _feed(session), OLD)
        _alert(session, OLD, "sent", item_id=item)

    report = prune(sessions, RetentionSpec(), NOW)

    assert report.deleted["alerts"] == 1 and report.deleted["items"] == 1


def test_batches_are_bounded_and_walk_past_kept_rows(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        feed = _feed(session)
        event_id = _event(session, OLD)
        loose = [_item(session, feed, OLD + timedelta(minutes=n)) for n in range(0, 250, 2)]
        kept = [
            _item(session, feed, OLD + timedelta(minutes=n), event_id=event_id)
            for n in range(1, 250, 2)
        ]
        _logs(session, feed, OLD, 1050)
    deletes: list[int] = []
    engine = sessions.kw["bind"]

    def count_deletes(conn: Any, cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("DELETE"):
            deletes.append(cursor.rowcount)

    event.listen(engine, "after_cursor_execute", count_deletes)
    report = prune(sessions, RetentionSpec(batch_size=100), NOW)
    event.remove(engine, "after_cursor_execute", count_deletes)

    assert report.deleted["fetch_log"] == 1050 and report.deleted["items"] == len(loose)
    assert deletes and max(deletes) <= 100
    # 11 batches of log (the last one short), 2 of items, and one empty look at each other.
    assert report.batches == 11 + 2 + 2
    with sessions() as session:
        assert _ids(session, ItemRow.id) == set(kept)


def test_time_budget_stops_the_run_and_the_next_one_goes_on(
    sessions: sessionmaker[Session],
) -> None:
    with sessions.begin() as session:
        _logs(session, _feed(session), OLD, 1000)
    elapsed = [0.0]

    def each_batch_takes_10_s(conn: Any, cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("DELETE"):
            elapsed[0] += 10.0

    engine = sessions.kw["bind"]
    event.listen(engine, "after_cursor_execute", each_batch_takes_10_s)
    spec = RetentionSpec(batch_size=100, time_budget=timedelta(seconds=65))
    first = prune(sessions, spec, NOW, monotonic=lambda: elapsed[0])
    event.remove(engine, "after_cursor_execute", each_batch_takes_10_s)

    # Alerts, items and assessments (none old) took a batch each, 30 s; four batches of log
    # brought it to 70 s, past the budget, and the run stopped there.
    assert not first.finished
    assert first.deleted["fetch_log"] == 400 and first.batches == 7
    assert first.longest_batch_s == 10.0
    rest = prune(sessions, RetentionSpec(batch_size=100), NOW)
    assert rest.finished and rest.deleted["fetch_log"] == 600


def test_stop_request_ends_the_run(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        _logs(session, _feed(session), OLD, 10)
    stop = threading.Event()
    stop.set()
    report = prune(sessions, RetentionSpec(), NOW, stop=stop.is_set)
    assert not report.finished and report.total == 0


def test_disabled_deletes_nothing(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        _logs(session, _feed(session), OLD, 10)
    report = prune(sessions, RetentionSpec(enabled=False), NOW)
    assert report.total == 0
    with sessions() as session:
        assert session.scalar(select(func.count(FetchLogRow.id))) == 10


def test_config_section_parsed_with_defaults() -> None:
    config = parse_config_text("corroboration: {enabled: false}\n", {})
    assert config.retention.fetch_log == timedelta(days=30)
    assert config.retention.items == timedelta(days=365)
    assert config.retention.batch_size == 5000
    text = "retention:\n  fetch_log: 14d\n  items: 2y\n"
    with pytest.raises(ConfigError, match=r"feeds.yaml:3: retention.items"):
        parse_config_text(text, {})
    config = parse_config_text("retention:\n  fetch_log: 14d\n  alerts: 400d\n", {})
    assert config.retention.fetch_log == timedelta(days=14)
    assert config.retention.alerts == timedelta(days=400)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("fetch_log: 1d", "1d is outside 7d"),
        ("items: 30d", "30d is outside 90d"),
        ("assessments: 1h", "outside 7d"),
        ("alerts: 3650d1s", "outside"),
        ("batch_size: 10", "greater than or equal to 100"),
        ("time_budget: 0s", "outside 1s"),
        ("fetchlog: 30d", "unknown key"),
    ],
)
def test_config_section_validated(line: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config_text(f"retention:\n  {line}\n", {})
