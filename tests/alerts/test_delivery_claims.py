"""Two processes sharing one database never both lease the same outbox row (and so send it
twice) or the same feed (and so poll it twice at once)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, select
from sqlalchemy.engine import Engine

from monitor.alerts.delivery import Delivery, RouteTarget
from monitor.alerts.notify import RecordingNotifier
from monitor.alerts.routing import RouteRules
from monitor.store.db import make_engine, make_sessions
from monitor.store.models import AlertRow, FeedRow
from monitor.store.repo import claim_due_feeds

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
TARGETS = {"team": RouteTarget(rules=RouteRules(name="team"), url="json://127.0.0.1:9/hook")}


@pytest.fixture
def engines(db_url: str) -> Iterator[tuple[Engine, Engine]]:
    first, second = make_engine(db_url), make_engine(db_url)
    yield first, second
    first.dispose()
    second.dispose()


def _delivery(engine: Engine) -> Delivery:
    notifier = RecordingNotifier()
    return Delivery(make_sessions(engine), TARGETS, lambda _target: notifier, lambda: NOW)


def _queue(engine: Engine, count: int) -> list[int]:
    with make_sessions(engine).begin() as session:
        rows = [
            AlertRow(
                route="team",
                dedup_key=f"event:{n}:new",
                kind="new",
                status="pending",
                payload={"title": f"story {n}"},
                due_at=NOW - timedelta(minutes=1),
                created_at=NOW,
            )
            for n in range(count)
        ]
        session.add_all(rows)
        session.flush()
        return [row.id for row in rows]


def _run_before_first_lease(engine: Engine, action: Any) -> list[int | None]:
    """Run `action` once, just before `engine` sends its first lease UPDATE for alerts."""
    results: list[int | None] = []

    def before(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("UPDATE ALERTS") and not results:
            results.append(action())

    event.listen(engine, "before_cursor_execute", before)
    return results


@pytest.mark.parametrize("rows", [1, 2])
def test_a_row_leased_in_between_is_not_leased_again(
    engines: tuple[Engine, Engine], rows: int
) -> None:
    first_engine, second_engine = engines
    ids = _queue(first_engine, rows)
    first, second = _delivery(first_engine), _delivery(second_engine)
    # The other process leases between this one's SELECT and its UPDATE.
    between = _run_before_first_lease(first_engine, second._claim_next)
    claimed = first._claim_next()

    [other] = between
    leased = [row_id for row_id in (claimed, other) if row_id is not None]
    assert len(leased) == len(set(leased)), "one row was leased by both processes"
    assert len(leased) == min(rows, 2)
    with make_sessions(first_engine)() as session:
        statuses = dict(session.execute(select(AlertRow.id, AlertRow.status)).tuples().all())
    assert sorted(leased) == sorted(i for i in ids if statuses[i] == "sending")


def test_every_row_is_sent_once_when_two_deliveries_alternate(
    engines: tuple[Engine, Engine],
) -> None:
    first_engine, second_engine = engines
    ids = _queue(first_engine, 6)
    first, second = _delivery(first_engine), _delivery(second_engine)
    leased: list[int] = []
    for _ in range(6):
        between = _run_before_first_lease(first_engine, second._claim_next)
        claimed = first._claim_next()
        leased += [row_id for row_id in (claimed, *between) if row_id is not None]
    assert sorted(leased) == sorted(ids)


def test_feeds_leased_in_between_are_not_leased_again(engines: tuple[Engine, Engine]) -> None:
    first_engine, second_engine = engines
    with make_sessions(first_engine).begin() as session:
        session.add_all(
            FeedRow(name=f"feed-{n}", url=f"http://127.0.0.1:9/{n}.xml", next_poll_at=NOW,
                    created_at=NOW)
            for n in range(4)
        )  # fmt: skip
    lease = timedelta(seconds=45)

    def other_process_claims_two() -> list[int]:
        with make_sessions(second_engine).begin() as session:
            return [row.id for row in claim_due_feeds(session, NOW, lease, limit=2, holder="a")]

    events: list[list[int]] = []

    def before(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("UPDATE FEEDS") and not events:
            events.append(other_process_claims_two())

    event.listen(first_engine, "before_cursor_execute", before)
    with make_sessions(first_engine).begin() as session:
        mine = [row.id for row in claim_due_feeds(session, NOW, lease, limit=4, holder="b")]
    [theirs] = events
    assert not set(mine) & set(theirs), "a feed was leased by both processes"
    assert len(theirs) == 2 or len(mine) == 4  # SQLite: they lease two first; PostgreSQL: locks
    assert sorted(mine + theirs) == sorted(set(mine + theirs))
    with make_sessions(first_engine)() as session:
        leased = session.scalars(select(FeedRow.id).where(FeedRow.lease_until.is_not(None)))
        assert sorted(leased) == sorted(mine + theirs)
