"""The outbox sender under trouble: a dead target, a row that cannot be rendered, and a
database that cannot take the result of a send that went out."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from monitor.alerts import digest_delivery as delivery_module
from monitor.alerts.delivery import Delivery, RouteTarget
from monitor.alerts.notify import RecordingNotifier
from monitor.alerts.routing import RouteRules
from monitor.store.db import make_engine, make_sessions, upgrade
from monitor.store.models import AlertRow, RouteStateRow

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def _target(name: str) -> RouteTarget:
    return RouteTarget(rules=RouteRules(name=name), url=f"json://127.0.0.1:9/{name}")


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    url = f"sqlite:///{tmp_path / 'outbox.db'}"
    upgrade(url)
    return make_engine(url)


def _payload(n: int) -> dict[str, Any]:
    """A queued measure told apart by its target, which its alert's title names."""
    return {"kind": "new", "title": f"story {n}", "targets": [f"s{n}"]}


S0, S1 = "Unknown country: measure · s0 · none", "Unknown country: measure · s1 · none"


def _queue(
    engine: Engine,
    route: str,
    count: int,
    payload: dict[str, Any] | None = None,
    status: str = "pending",
) -> None:
    with make_sessions(engine).begin() as session:
        for n in range(count):
            session.add(
                AlertRow(
                    route=route,
                    dedup_key=f"{route}:{n}",
                    kind="new",
                    status=status,
                    payload=payload if payload is not None else _payload(n),
                    due_at=NOW - timedelta(minutes=10 - n),
                    created_at=NOW,
                )
            )


class DatabaseAway:
    """Makes one of a Delivery's recording methods fail, as a restarting database would,
    while `away` is true."""

    def __init__(self, delivery: Delivery, method: str) -> None:
        self.away = True
        original = getattr(delivery, method)

        def record_unless_away(*args: Any) -> Any:
            if self.away:
                raise OperationalError("UPDATE alerts", {}, Exception("database is restarting"))
            return original(*args)

        setattr(delivery, method, record_unless_away)


def _rows(engine: Engine) -> list[AlertRow]:
    with make_sessions(engine)() as session:
        return list(session.scalars(select(AlertRow).order_by(AlertRow.id)))


def test_a_dead_target_is_tried_once_per_pass_and_the_other_routes_go_out(
    engine: Engine,
) -> None:
    _queue(engine, "dead", 3)  # due first
    _queue(engine, "team", 2)
    notifiers = {"dead": RecordingNotifier(fail=True), "team": RecordingNotifier()}
    targets = {name: _target(name) for name in notifiers}
    delivery = Delivery(
        make_sessions(engine), targets, lambda t: notifiers[t.rules.name], lambda: NOW
    )
    report = delivery.deliver_due()
    assert (report.sent, report.failed) == (2, 1)
    assert len(notifiers["dead"].failed) == 1
    assert notifiers["team"].titles == [S0, S1]
    pending = [row for row in _rows(engine) if row.route == "dead"]
    assert [row.status for row in pending] == ["pending"] * 3


def test_a_row_that_cannot_be_rendered_fails_like_a_send_and_ends_dead(engine: Engine) -> None:
    _queue(engine, "team", 1, payload={"no": "title"})
    notifier = RecordingNotifier()
    clock = [NOW]
    delivery = Delivery(
        make_sessions(engine), {"team": _target("team")}, lambda _t: notifier, lambda: clock[0],
        max_attempts=2,
    )  # fmt: skip
    assert delivery.deliver_due().failed == 1
    [row] = _rows(engine)
    assert (row.status, row.attempts) == ("pending", 1)
    assert (row.last_error or "").startswith("cannot render this alert: KeyError")
    clock[0] = NOW + timedelta(hours=2)
    assert delivery.deliver_due().dead == 1
    assert _rows(engine)[0].status == "dead" and notifier.sent == []


def test_a_send_the_database_could_not_record_is_recorded_first_and_never_resent(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(delivery_module, "MARK_RETRY_S", 0.0)
    _queue(engine, "team", 2)
    _queue(engine, "ops", 1)  # due after team's
    notifier = RecordingNotifier()
    targets = {"team": _target("team"), "ops": _target("ops")}
    delivery = Delivery(make_sessions(engine), targets, lambda _t: notifier, lambda: NOW)
    database = DatabaseAway(delivery, "_record_result")
    first = delivery.deliver_due()
    assert notifier.titles == [S0]  # out, but not written down; nothing else was sent
    assert first.sent == 0
    assert delivery.deliver_due() == type(first)()  # still away: nothing new goes out
    assert notifier.titles == [S0]
    database.away = False
    second = delivery.deliver_due()
    assert sorted(notifier.titles) == [S0, S0, S1]  # team s0, ops s0, s1
    assert notifier.titles[0] == S0 and second.sent == 2
    assert [(row.status, row.attempts) for row in _rows(engine)] == [("sent", 1)] * 3


def test_a_digest_the_database_could_not_record_is_recorded_first_and_never_resent(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(delivery_module, "MARK_RETRY_S", 0.0)
    _queue(engine, "daily", 2, status="digest")
    notifier = RecordingNotifier()
    daily = RouteTarget(
        rules=RouteRules(name="daily"), url="json://127.0.0.1:9/daily", digest_cron="0 8 * * *"
    )
    clock = [NOW]
    delivery = Delivery(make_sessions(engine), {"daily": daily}, lambda _t: notifier,
                        lambda: clock[0])  # fmt: skip
    assert delivery.send_digests() == 0  # its first time is tomorrow at 08:00
    clock[0] = datetime(2026, 11, 24, 8, 0, 1, tzinfo=UTC)
    database = DatabaseAway(delivery, "_record_digest")
    assert delivery.send_digests() == 1 and len(notifier.sent) == 1  # out, not written down
    clock[0] += timedelta(minutes=5)
    assert delivery.send_digests() == 0  # still away: the same digest is not sent again
    database.away = False
    assert delivery.send_digests() == 0 and len(notifier.sent) == 1  # written down, not resent
    rows = _rows(engine)
    assert [(row.status, row.attempts) for row in rows] == [("sent", 1)] * 2
    assert {row.sent_at.replace(tzinfo=UTC) for row in rows if row.sent_at} == {
        datetime(2026, 11, 24, 8, 0, 1, tzinfo=UTC)  # when it went out, not when written down
    }


def test_an_edited_digest_schedule_applies_at_once(engine: Engine) -> None:
    """From daily to hourly: the next digest comes within the hour, not at tomorrow's 08:00."""
    _queue(engine, "daily", 2, status="digest")
    notifier = RecordingNotifier()
    url = "json://127.0.0.1:9/daily"
    clock = [NOW]  # 12:00
    targets = {"daily": RouteTarget(RouteRules(name="daily"), url, digest_cron="0 8 * * *")}
    delivery = Delivery(make_sessions(engine), targets, lambda _t: notifier, lambda: clock[0])
    assert delivery.send_digests() == 0  # next at 08:00 tomorrow
    delivery.targets = {"daily": replace(targets["daily"], digest_cron="0 * * * *")}  # reload
    clock[0] = NOW + timedelta(hours=1, seconds=1)
    assert delivery.send_digests() == 1 and len(notifier.sent) == 1
    assert {row.status for row in _rows(engine)} == {"sent"}


def test_stopping_with_an_unrecorded_send_records_it_or_names_it(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(delivery_module, "MARK_RETRY_S", 0.0)
    _queue(engine, "team", 2)
    notifier = RecordingNotifier()
    delivery = Delivery(make_sessions(engine), {"team": _target("team")}, lambda _t: notifier,
                        lambda: NOW)  # fmt: skip
    database = DatabaseAway(delivery, "_record_result")
    delivery.deliver_due()
    [sent_id] = delivery._unrecorded
    delivery.close()  # still away: the operators are told which alert will go twice
    assert f"alerts [{sent_id}]" in caplog.text and "go out again" in caplog.text
    assert delivery._unrecorded == {sent_id: None}
    caplog.clear()
    database.away = False
    delivery.close()  # back: said, then written down on the way out
    assert "written down now" in caplog.text
    assert [row.status for row in _rows(engine)] == ["sent", "pending"]


def test_a_runtime_closing_writes_down_an_unrecorded_digest(tmp_path: Path, engine: Engine) -> None:
    """Runtime.close (the daemon's last step) closes the delivery, digests included."""
    from monitor.daemon.bootstrap import Settings, build_runtime
    from tests.support.stack import write_config

    _queue(engine, "daily", 2, status="digest")
    routes = [{"name": "daily", "url": "json://127.0.0.1:9/daily", "delivery": "digest",
               "digest": '{cron: "0 8 * * *"}'}]  # fmt: skip
    feeds = [{"name": "RFA", "url": "https://www.rfa.org/feed"}]
    config = write_config(tmp_path / "feeds.yaml", feeds, routes)
    runtime = build_runtime(Settings(config, str(engine.url)), env={})
    ids = [row.id for row in _rows(engine)]
    with runtime.sessions.begin() as session:
        session.add(RouteStateRow(route="daily", last_digest_at=None))
    target = runtime.delivery.targets["daily"]
    runtime.delivery._unrecorded_digests["daily"] = delivery_module.DigestResult(
        target, ids, None, NOW
    )
    runtime.close()
    assert [(row.status, row.digest_id) for row in _rows(engine)] == [("sent", ids[0])] * 2


def test_an_upgraded_route_in_backoff_keeps_its_next_time(engine: Engine) -> None:
    """A database from before schedules were remembered: the digest time it has (here a
    failed digest's backoff) is kept, not recomputed into an immediate send."""
    _queue(engine, "daily", 2, status="digest")
    backoff_until = NOW + timedelta(minutes=30)
    with make_sessions(engine).begin() as session:
        session.add(RouteStateRow(route="daily", last_digest_at=None, next_digest_at=backoff_until))
    notifier = RecordingNotifier()
    daily = RouteTarget(RouteRules(name="daily"), "json://127.0.0.1:9/d", digest_cron="0 8 * * *")
    clock = [NOW + timedelta(minutes=1)]
    delivery = Delivery(make_sessions(engine), {"daily": daily}, lambda _t: notifier,
                        lambda: clock[0])  # fmt: skip
    assert delivery.send_digests() == 0 and notifier.sent == []
    clock[0] = backoff_until + timedelta(seconds=1)
    assert delivery.send_digests() == 1
