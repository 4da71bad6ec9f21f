"""Faults around the daemon: kill -9 mid-poll and mid-delivery, alert targets down or slow,
the database locked or restarted, and secrets under failure. Real parts throughout: the
`monitor` command in a subprocess, HTTP feeds, SMTP and webhook receivers, SQLite files and
a real PostgreSQL server, all on 127.0.0.1."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from monitor.alerts.delivery import retry_dead
from monitor.alerts.notify import DEFAULT_TIMEOUT_S, AppriseNotifier
from monitor.clock import FrozenClock
from monitor.daemon.bootstrap import Settings, build_runtime
from monitor.store.db import make_engine, make_sessions, upgrade
from monitor.store.models import AlertRow, FeedRow
from tests.support.faults import (
    MEASURES,
    AckWebhookReceiver,
    DaemonProcess,
    alert_rows,
    by_measure,
    daemon_env,
    daemons,
    db_session,
    items_by_guid,
    measure_item,
    stored_guids,
    unrelated_item,
    wait_until,
)
from tests.support.feedserver import FeedServer, rss
from tests.support.pg import PostgresServer
from tests.support.receivers import SmtpReceiver, WebhookReceiver, free_port
from tests.support.stack import make_runtime, write_config

ROUTE_PATHS = ("/a", "/b")


@pytest.fixture
def ack_webhook() -> AckWebhookReceiver:
    receiver = AckWebhookReceiver()
    receiver.start()
    yield receiver  # type: ignore[misc]
    receiver.stop()


def _monitor(*args: str, env: dict[str, str] | None = None, timeout: float = 60):
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=daemon_env(env),
    )


def _two_hook_routes(receiver: AckWebhookReceiver) -> tuple[list[dict[str, object]], dict]:
    routes: list[dict[str, object]] = [
        {"name": "hook-a", "url": "${HOOK_A}", "min_score": 0.5},
        {"name": "hook-b", "url": "${HOOK_B}", "min_score": 0.5},
    ]
    env = {"HOOK_A": receiver.url_for("/a"), "HOOK_B": receiver.url_for("/b")}
    return routes, env


def _expire_leases(db_url: str) -> None:
    """What the dead process's leases would be after they run out (feeds 45 s, alerts 60 s)."""
    past = datetime.now(UTC) - timedelta(seconds=1)
    with db_session(db_url) as session:
        leased_feeds = FeedRow.lease_until.is_not(None)
        session.execute(update(FeedRow).where(leased_feeds).values(lease_until=past))
        sending = AlertRow.status == "sending"
        session.execute(update(AlertRow).where(sending).values(lease_until=past))
        session.commit()


def _assert_each_measure_once(db_url: str, guids: list[str]) -> dict[str, int]:
    """Every guid stored exactly once, flagged into an event of its own; returns guid→event."""
    counts = stored_guids(db_url)
    assert {guid: counts[guid] for guid in guids} == dict.fromkeys(guids, 1)
    items = items_by_guid(db_url)
    events = {guid: items[guid].event_id for guid in guids}
    assert None not in events.values(), events
    assert len(set(events.values())) == len(guids), events
    return events  # type: ignore[return-value]


def _assert_one_sent_alert_per_route_and_event(
    db_url: str, events: dict[str, int], routes: tuple[str, ...]
) -> None:
    rows = [row for row in alert_rows(db_url) if row.kind == "new"]
    per_key = Counter((row.route, row.event_id) for row in rows)
    expected = {(route, event): 1 for route in routes for event in events.values()}
    assert dict(per_key) == expected
    assert {row.status for row in rows} == {"sent"}, [(r.route, r.status) for r in rows]


# ------------------------------------------------------------------------ kill -9


def test_kill9_during_poll_cycle_then_restart_loses_and_repeats_nothing(
    tmp_path: Path, feed_server: FeedServer, ack_webhook: AckWebhookReceiver
) -> None:
    slow_delay = 8.0
    feeds, measure_guids, slow_guids = [], [], []
    for n in range(20):
        slow = n >= 14  # six slow feeds, still fetching when the daemon is killed
        items = [unrelated_item(n)]
        if n % 5 == 0 or slow and n % 2 == 0:  # measures on 3 fast and 4 slow feeds
            items.insert(0, measure_item(len(measure_guids)))
            measure_guids.append(items[0]["guid"])
            if slow:
                slow_guids.append(items[0]["guid"])
        feed_server.serve(f"/f{n}.xml", rss(items), delay_s=slow_delay if slow else 0.0)
        feeds.append({"name": f"Feed {n}", "url": feed_server.url(f"/f{n}.xml")})
    assert len(measure_guids) == 7 and len(slow_guids) == 4
    fast_measures = len(measure_guids) - len(slow_guids)
    routes, env = _two_hook_routes(ack_webhook)
    config = write_config(tmp_path / "feeds.yaml", feeds, routes)
    db_url = f"sqlite:///{tmp_path / 'monitor.db'}"
    slow_paths = [f"/f{n}.xml" for n in range(14, 20)]

    with daemons() as started:
        first = DaemonProcess(config, db_url, tmp_path / "run1.log", daemon_env(env))
        started.append(first)
        wait_until(lambda: all(feed_server.hits(p) for p in slow_paths), 30, "slow fetches", first)
        slow_started = time.monotonic()
        # Let the fast feeds' alerts go out completely, so the kill lands in the poll cycle
        # (slow fetches in flight), not between a webhook's answer and the `sent` mark.
        wait_until(
            lambda: (
                len(ack_webhook.acknowledged()) == 2 * fast_measures
                and all(r.status == "sent" for r in alert_rows(db_url))
            ),
            slow_delay - 2,
            "fast feeds' alerts",
            first,
        )
        assert time.monotonic() - slow_started < slow_delay - 0.5, "too slow to kill mid-fetch"
        first.kill9()
        stored = stored_guids(db_url)
        assert not any(stored[guid] for guid in slow_guids)  # killed before they were stored
        with db_session(db_url) as session:
            leased = session.scalars(select(FeedRow.name).where(FeedRow.lease_until.is_not(None)))
            assert {f"Feed {n}" for n in range(14, 20)} <= set(leased)

        # The restarted daemon must poll again what the dead one had in flight. The dead
        # process's leases stand for 45 seconds (see test_restart_polls_feeds_leased_...);
        # here they are expired, as 45 seconds later.
        _expire_leases(db_url)
        for path in slow_paths:
            feed_server.serve(path, feed_server_body(feed_server, path), delay_s=0.2)
        second = DaemonProcess(config, db_url, tmp_path / "run2.log", daemon_env(env))
        started.append(second)
        wait_until(lambda: all(feed_server.hits(p) >= 2 for p in slow_paths), 30, "re-poll", second)
        wait_until(
            lambda: (
                len(ack_webhook.acknowledged()) >= 2 * len(measure_guids)
                and all(r.status == "sent" for r in alert_rows(db_url))
            ),
            30,
            "every alert sent",
            second,
        )
        assert second.terminate() == 0, second.log()

    every_guid = measure_guids + [f"other-{n}" for n in range(20)]
    assert stored_guids(db_url) == Counter(dict.fromkeys(every_guid, 1))
    events = _assert_each_measure_once(db_url, measure_guids)
    _assert_one_sent_alert_per_route_and_event(db_url, events, ("hook-a", "hook-b"))
    keys = {key for key, _, _ in MEASURES[: len(measure_guids)]}
    expected = {(path, key): 1 for path in ROUTE_PATHS for key in keys}
    assert dict(by_measure(ack_webhook.received())) == expected
    assert dict(by_measure(ack_webhook.acknowledged())) == expected


def feed_server_body(server: FeedServer, path: str) -> bytes:
    """The document a FeedServer path serves now."""
    with server._lock:
        return server._routes[path].body


def test_kill9_during_alert_delivery_resends_only_unacknowledged(
    tmp_path: Path, feed_server: FeedServer, ack_webhook: AckWebhookReceiver
) -> None:
    count = 3
    feed_server.serve("/m.xml", rss([measure_item(i) for i in range(count)]))
    routes, env = _two_hook_routes(ack_webhook)
    config = write_config(
        tmp_path / "feeds.yaml", [{"name": "M", "url": feed_server.url("/m.xml")}], routes
    )
    db_url = f"sqlite:///{tmp_path / 'monitor.db'}"
    ack_webhook.hang_after = 2  # answer two posts, then hang on the third (mid-delivery)

    with daemons() as started:
        first = DaemonProcess(config, db_url, tmp_path / "run1.log", daemon_env(env))
        started.append(first)
        wait_until(lambda: ack_webhook.hanging == 1, 30, "a hanging post", first)
        first.kill9()
        rows = alert_rows(db_url)
        assert len(rows) == 2 * count
        status = Counter(row.status for row in rows)
        # Two acknowledged and marked sent, one leased (hanging), the rest still pending:
        # rows are leased one at a time, so a crash strands only the row being sent.
        assert status == {"sent": 2, "sending": 1, "pending": 2 * count - 3}, status
        acked_before = by_measure(ack_webhook.acknowledged())
        hung = set(by_measure(ack_webhook.received())) - set(acked_before)
        assert len(hung) == 1 and sum(acked_before.values()) == 2

        ack_webhook.unhang()
        # The dead sender's lease (60 s) is expired here as if that time had passed.
        _expire_leases(db_url)
        second = DaemonProcess(config, db_url, tmp_path / "run2.log", daemon_env(env))
        started.append(second)
        wait_until(
            lambda: [r.status for r in alert_rows(db_url)] == ["sent"] * (2 * count),
            30,
            "every alert sent",
            second,
        )
        assert second.terminate() == 0, second.log()

    keys = {key for key, _, _ in MEASURES[:count]}
    expected = {(path, key): 1 for path in ROUTE_PATHS for key in keys}
    # At-least-once, and better where the target confirmed: each (route, event) was
    # acknowledged exactly once; only the post the target never answered came twice.
    assert dict(by_measure(ack_webhook.acknowledged())) == expected
    received = by_measure(ack_webhook.received())
    assert received == Counter(expected) + Counter(hung)
    events = _assert_each_measure_once(db_url, [measure_item(i)["guid"] for i in range(count)])
    _assert_one_sent_alert_per_route_and_event(db_url, events, ("hook-a", "hook-b"))


def test_restart_polls_feeds_leased_by_a_killed_process_promptly(
    tmp_path: Path, feed_server: FeedServer, clock: FrozenClock
) -> None:
    feed_server.serve("/slow.xml", rss([measure_item(0)]), delay_s=3.0)
    config = write_config(
        tmp_path / "feeds.yaml", [{"name": "Slow", "url": feed_server.url("/slow.xml")}]
    )
    db_url = f"sqlite:///{tmp_path / 'monitor.db'}"
    upgrade(db_url)
    crashed = make_runtime(config, db_url, clock)
    crashed.poller.tick()  # leases the feed and starts its fetch ...
    wait_until(lambda: feed_server.hits("/slow.xml"), 10, "the fetch")
    crashed.close()  # ... and dies without storing it or giving the lease back

    clock.advance(timedelta(minutes=1))  # restarted a minute later
    restarted = make_runtime(config, db_url, clock)
    feed_server.serve("/slow.xml", rss([measure_item(0)]))
    try:
        report = restarted.poller.run_once()
        assert report.polled == 1 and report.flagged == 1
    finally:
        restarted.close()


# ------------------------------------------------------------------------ targets down or slow


@pytest.mark.parametrize("fault", ["smtp_refusing", "webhook_500"])
def test_failing_target_backs_off_dead_letters_and_retry_delivers_once(
    fault: str,
    tmp_path: Path,
    feed_server: FeedServer,
    smtp: SmtpReceiver,
    webhook: WebhookReceiver,
    clock: FrozenClock,
) -> None:
    feed_server.serve("/m.xml", rss([measure_item(0)]))
    if fault == "smtp_refusing":
        url, received = smtp.apprise_url(), smtp.messages
        smtp.stop()
    else:
        url, received = webhook.apprise_url(), webhook.posts
        webhook.status = 500
    config = write_config(
        tmp_path / "feeds.yaml",
        [{"name": "M", "url": feed_server.url("/m.xml")}],
        [{"name": "target", "url": "${TARGET_URL}"}],
    )
    db_url = f"sqlite:///{tmp_path / 'monitor.db'}"
    upgrade(db_url)
    runtime = make_runtime(config, db_url, clock, {"TARGET_URL": url})
    try:
        assert runtime.poller.run_once().alerts_queued == 1
        delays = []
        for attempt in range(1, 9):
            report = runtime.delivery.deliver_due()
            assert (report.sent, report.failed + report.dead) == (0, 1)
            with runtime.sessions() as session:
                row = session.scalars(select(AlertRow)).one()
            assert row.attempts == attempt and row.last_error
            if attempt == 8:
                assert row.status == "dead" and report.dead == 1
                break
            assert row.status == "pending"
            delay = row.due_at - clock.now()
            delays.append(delay.total_seconds())
            clock.advance(delay - timedelta(seconds=1))
            assert runtime.delivery.deliver_due() == type(report)()  # not due yet: no attempt
            clock.advance(timedelta(seconds=1))
        assert delays == [30 * 2**n for n in range(7)]  # 30 s doubling, under the 1 h cap
    finally:
        runtime.close()

    if fault == "smtp_refusing":  # what an operator sees and does (the CLI, once per run)
        common = ("--config", str(config), "--db", db_url)
        listed = _monitor(*common, "alerts", "list", "--status", "dead")
        assert listed.returncode == 0, listed.stderr
        assert f"#{row.id}" in listed.stdout and "tries=8" in listed.stdout
        assert "error: mailto://127.0.0.1" in listed.stdout  # why, without secrets
        retried = _monitor(*common, "alerts", "retry")
        assert retried.returncode == 0 and "1 alerts queued again" in retried.stdout
    else:
        engine = make_engine(db_url)
        assert retry_dead(make_sessions(engine), datetime.now(UTC)) == 1
        engine.dispose()

    if fault == "smtp_refusing":
        smtp.start()
    else:
        webhook.status = 200
    runtime = make_runtime(config, db_url, clock, {"TARGET_URL": url})
    try:
        clock.set(max(clock.now(), datetime.now(UTC)) + timedelta(seconds=1))
        assert runtime.delivery.deliver_due().sent == 1
        clock.advance(timedelta(hours=2))
        assert runtime.delivery.deliver_due() == type(report)()
        with runtime.sessions() as session:
            row = session.scalars(select(AlertRow)).one()
        assert (row.status, row.attempts, row.last_error) == ("sent", 1, None)
    finally:
        runtime.close()
    if fault == "smtp_refusing":
        assert len(smtp.wait_for(1)) == 1
    else:
        assert len([p for p in received if "Myanmar" in p.get("title", "")]) == 9  # 8 + 1


def test_hanging_webhook_send_is_bounded_by_the_notifier_timeout(
    tmp_path: Path, feed_server: FeedServer, webhook: WebhookReceiver, clock: FrozenClock
) -> None:
    assert DEFAULT_TIMEOUT_S <= 10  # the daemon's bound on one send (connect/read timeouts)
    webhook.hang = True
    feed_server.serve("/m.xml", rss([measure_item(0)]))
    config = write_config(
        tmp_path / "feeds.yaml",
        [{"name": "M", "url": feed_server.url("/m.xml")}],
        [{"name": "hook", "url": "${HOOK}"}],
    )
    db_url = f"sqlite:///{tmp_path / 'monitor.db'}"
    upgrade(db_url)
    timeout_s = 1.5
    notifier = AppriseNotifier(timeout_s=timeout_s)
    settings = Settings(config_path=config, db_url=db_url, workers=2, host_spacing_s=0.0)
    runtime = build_runtime(
        settings, env={"HOOK": webhook.apprise_url()}, clock=clock, notifier_for=lambda t: notifier
    )
    runtime.sync_feeds()
    try:
        runtime.poller.run_once()
        started = time.monotonic()
        report = runtime.delivery.deliver_due()
        took = time.monotonic() - started
        assert report.failed == 1 and len(webhook.posts) == 1
        assert timeout_s * 0.9 <= took < timeout_s * 3, took
        with runtime.sessions() as session:
            row = session.scalars(select(AlertRow)).one()
        assert (row.status, row.attempts) == ("pending", 1) and row.due_at > clock.now()
    finally:
        webhook._release.set()
        runtime.close()


def test_polling_goes_on_while_a_webhook_hangs(
    tmp_path: Path, feed_server: FeedServer, ack_webhook: AckWebhookReceiver
) -> None:
    ack_webhook.hang = True
    feed_server.serve("/first.xml", rss([measure_item(0)]))
    feeds = [{"name": "First", "url": feed_server.url("/first.xml")}]
    later = {}
    for n, delay in enumerate((3.0, 3.5, 4.0), start=1):
        body = rss([measure_item(n), unrelated_item(n)])
        feed_server.serve(f"/later{n}.xml", body, delay_s=delay)
        feeds.append({"name": f"Later {n}", "url": feed_server.url(f"/later{n}.xml")})
        later[measure_item(n)["guid"]] = unrelated_item(n)["guid"]
    config = write_config(tmp_path / "feeds.yaml", feeds, [{"name": "hook", "url": "${HOOK}"}])
    db_url = f"sqlite:///{tmp_path / 'monitor.db'}"
    env = daemon_env({"HOOK": ack_webhook.url_for("/hook")})
    with daemons() as started:
        daemon = DaemonProcess(config, db_url, tmp_path / "run.log", env)
        started.append(daemon)
        wait_until(lambda: ack_webhook.hanging == 1, 30, "the first alert to hang", daemon)
        hang_started = time.monotonic()
        wanted = [*later, *later.values()]
        assert not all(stored_guids(db_url)[g] for g in wanted)
        wait_until(lambda: all(stored_guids(db_url)[g] for g in wanted), 15, "later feeds", daemon)
        # Stored, flagged and queued while the delivery job was still stuck on one send.
        assert ack_webhook.hanging == 1 and ack_webhook.acknowledged() == []
        assert time.monotonic() - hang_started < DEFAULT_TIMEOUT_S
        queued = [row for row in alert_rows(db_url) if row.status in ("pending", "sending")]
        assert len(queued) == 4
        ack_webhook.unhang()
        daemon.process.kill()


# ------------------------------------------------------------------------ database faults


@pytest.mark.postgres
def test_a_database_that_answers_with_a_refusal_ends_the_start_at_once(
    tmp_path: Path, postgres_server: PostgresServer
) -> None:
    """Waiting helps a server that is not up yet, not one that says no (here: no such
    database): `monitor run` exits with the server's reason instead of waiting forever."""
    config = write_config(tmp_path / "feeds.yaml", [])
    started = time.monotonic()
    run = _monitor("--config", str(config), "--db", postgres_server.url("t_no_such_db"), "run")
    assert run.returncode != 0
    assert "does not exist" in run.stderr and "not reachable" not in run.stderr
    assert time.monotonic() - started < 30


@pytest.mark.postgres
def test_postgresql_restart_mid_run_daemon_reconnects_and_carries_on(
    tmp_path: Path,
    postgres_server: PostgresServer,
    feed_server: FeedServer,
    ack_webhook: AckWebhookReceiver,
) -> None:
    db_url = postgres_server.create_database()
    upgrade(db_url)  # so the test can read the tables at once; the daemon's upgrade is a no-op
    feed_server.serve("/before.xml", rss([measure_item(0)]))
    # Fetched before the outage, answered only after the server is back.
    feed_server.serve("/after.xml", rss([measure_item(1)]), delay_s=9.0)
    feeds = [
        {"name": "Before", "url": feed_server.url("/before.xml"), "interval": "60s"},
        {"name": "After", "url": feed_server.url("/after.xml"), "interval": "60s"},
    ]
    config = write_config(tmp_path / "feeds.yaml", feeds, [{"name": "hook", "url": "${HOOK}"}])
    env = daemon_env({"HOOK": ack_webhook.url_for("/hook")})
    stopped = False
    with daemons() as started:
        daemon = DaemonProcess(config, db_url, tmp_path / "run.log", env)
        started.append(daemon)
        try:

            def first_alert_sent() -> bool:
                if not feed_server.hits("/after.xml") or len(ack_webhook.acknowledged()) != 1:
                    return False
                return [row.status for row in alert_rows(db_url)] == ["sent"]

            wait_until(first_alert_sent, 30, "the first alert", daemon)
            requested = time.monotonic()
            postgres_server.stop()
            stopped = True
            wait_until(lambda: _db_error_logged(daemon.log()), 10, "a db error", daemon)
            postgres_server.restart()
            stopped = False
            assert time.monotonic() - requested < 8, "outage outlasted the slow fetch"
        finally:
            if stopped:
                postgres_server.restart()
        wait_until(lambda: stored_guids(db_url)[measure_item(1)["guid"]], 20, "item", daemon)
        wait_until(lambda: len(ack_webhook.acknowledged()) == 2, 20, "its alert", daemon)
        assert daemon.alive
        assert daemon.terminate() == 0
    log = daemon.log()
    assert _db_error_logged(log), log[-3000:]
    assert "Traceback" not in log, log[-3000:]
    assert dict(by_measure(ack_webhook.acknowledged())) == {
        ("/hook", "Myanmar"): 1,
        ("/hook", "Balochistan"): 1,
    }
    assert [r.status for r in alert_rows(db_url)] == ["sent", "sent"]


def _db_error_logged(log: str) -> bool:
    return "database error" in log or "(database)" in log


def test_sqlite_write_lock_held_elsewhere_makes_the_poll_wait_not_fail(
    tmp_path: Path, feed_server: FeedServer, clock: FrozenClock
) -> None:
    feed_server.serve("/m.xml", rss([measure_item(0), unrelated_item(0)]), delay_s=1.0)
    config = write_config(
        tmp_path / "feeds.yaml",
        [{"name": "M", "url": feed_server.url("/m.xml")}],
        [{"name": "hook", "url": "json://127.0.0.1:9/hook"}],
    )
    path = tmp_path / "monitor.db"
    db_url = f"sqlite:///{path}"
    upgrade(db_url)
    runtime = make_runtime(config, db_url, clock)
    released_at: list[float] = []

    def hold_write_lock() -> None:
        wait_until(lambda: feed_server.hits("/m.xml"), 10, "the fetch")  # claimed, in flight
        other = sqlite3.connect(path, isolation_level=None, timeout=30)
        other.execute("BEGIN IMMEDIATE")  # the writer lock, held over the store
        other.execute("UPDATE feeds SET malformed = 'held' WHERE 0")
        time.sleep(2.0)
        released_at.append(time.monotonic())
        other.execute("COMMIT")
        other.close()

    holder = threading.Thread(target=hold_write_lock)
    holder.start()
    try:
        report = runtime.poller.run_once()
        returned = time.monotonic()
    finally:
        holder.join(15)
        runtime.close()
    assert released_at and returned >= released_at[0]  # it waited for the lock ...
    assert (report.polled, report.failed, report.new_items, report.flagged) == (1, 0, 2, 1)
    assert stored_guids(db_url) == Counter({"measure-myanmar": 1, "other-0": 1})  # ... and stored
    assert [row.status for row in alert_rows(db_url)] == ["pending"]


# ------------------------------------------------------------------------ secrets


HOOK_TOKEN = "S3cr3tT0ken"
MAIL_PASSWORD = "MailPa55w0rd"
PG_PASSWORD = "PgPa55w0rdXyz"


def _secret_free(text: str, *secrets: str) -> None:
    for secret in secrets:
        assert secret not in text, f"secret {secret!r} leaked:\n{text}"


def test_route_secrets_never_leak_under_failure(
    tmp_path: Path, feed_server: FeedServer, ack_webhook: AckWebhookReceiver
) -> None:
    ack_webhook.status = 500  # every webhook delivery fails (and is retried)
    hook_url = ack_webhook.url_for("/hook", auth=f"monitor:{HOOK_TOKEN}@")
    mail_url = (
        f"mailto://mailer:{MAIL_PASSWORD}@127.0.0.1:{free_port()}"
        "?from=monitor@example.org&to=ops@example.org"
    )
    secrets = (HOOK_TOKEN, MAIL_PASSWORD, hook_url, mail_url)
    feed_server.serve("/m.xml", rss([measure_item(0)]))
    feed_server.serve("/n.xml", rss([measure_item(1)]))
    config = write_config(
        tmp_path / "feeds.yaml",
        [{"name": "M", "url": feed_server.url("/m.xml")}],
        [{"name": "hook", "url": "${HOOK_URL}"}, {"name": "mail", "url": "${MAIL_URL}"}],
    )
    env = {"HOOK_URL": hook_url, "MAIL_URL": mail_url, "MONITOR_LOG_LEVEL": "DEBUG"}
    db_url = f"sqlite:///{tmp_path / 'monitor.db'}"
    common = ("--config", str(config), "--db", db_url)

    polled = _monitor(*common, "poll", "--once", env=env)
    assert polled.returncode == 0, polled.stderr
    assert "1 flagged" in polled.stdout and "0 sent, 2 failed" in polled.stdout
    _secret_free(polled.stdout + polled.stderr, *secrets)

    listed = _monitor(*common, "feeds", "list", env=env)
    assert listed.returncode == 0 and "route hook: json://127.0.0.1" in listed.stdout
    _secret_free(listed.stdout + listed.stderr, *secrets)

    # The daemon: a second feed, a second failing attempt of everything.
    write_config(
        config,
        [
            {"name": "M", "url": feed_server.url("/m.xml")},
            {"name": "N", "url": feed_server.url("/n.xml")},
        ],
        [{"name": "hook", "url": "${HOOK_URL}"}, {"name": "mail", "url": "${MAIL_URL}"}],
    )
    with daemons() as started:
        daemon = DaemonProcess(config, db_url, tmp_path / "run.log", daemon_env(env))
        started.append(daemon)
        wait_until(
            lambda: len([r for r in alert_rows(db_url) if r.attempts >= 1]) == 4,
            30,
            "failed deliveries",
            daemon,
        )
        assert daemon.terminate() == 0
    _secret_free(daemon.log(), *secrets)
    assert "alert failed route=mail" in daemon.log()

    rows = alert_rows(db_url)
    assert {row.route for row in rows} == {"hook", "mail"} and all(r.last_error for r in rows)
    for row in rows:
        _secret_free(row.last_error or "", *secrets)
        _secret_free(json.dumps(row.payload), *secrets)
    posts = ack_webhook.received()
    assert posts  # the webhook did receive the rendered alerts (and answered 500)
    _secret_free(json.dumps(posts), *secrets)


def test_database_password_never_printed(tmp_path: Path) -> None:
    config = write_config(tmp_path / "feeds.yaml", [])
    db_url = f"postgresql+psycopg://postgres:{PG_PASSWORD}@127.0.0.1:{free_port()}/monitor"
    status = _monitor("--config", str(config), "--db", db_url, "feeds", "status")
    assert status.returncode != 0 and "OperationalError" in status.stderr  # nothing listens
    _secret_free(status.stdout + status.stderr, PG_PASSWORD)
    # The daemon waits for its database (it may be starting beside it), saying so in the log.
    run = subprocess.Popen(
        [sys.executable, "-m", "monitor", "--config", str(config), "run"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "MONITOR_DB_URL": db_url, "MONITOR_LISTEN": "127.0.0.1:0"},
    )
    try:
        time.sleep(4)
        assert run.poll() is None, "monitor run gave up on a database that is not up yet"
    finally:
        run.terminate()
        out, err = run.communicate(timeout=15)
    assert "database not reachable at start" in err
    _secret_free(out + err, PG_PASSWORD)
