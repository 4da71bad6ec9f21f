"""The daemon as an operator runs it: the real `monitor` command in a subprocess, signals,
hot reload of feeds.yaml, and the console route of a fresh install."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from monitor.clock import FrozenClock
from monitor.daemon.bootstrap import Runtime
from monitor.daemon.scheduler import Daemon
from monitor.store.models import FeedRow
from tests.support.feedserver import FeedServer, rss
from tests.support.stack import make_runtime, write_config

MEASURE = {
    "title": "Laos orders operators to cut foreign internet gateways",
    "description": "The ministry told telecom operators to shut down connections that bypass "
    "the national internet gateway by the end of the month.",
    "guid": "la-1",
    "link": "https://news.example.org/la/gateway",
}


def _monitor(*args: str, env: dict[str, str] | None = None) -> list[str]:
    return [sys.executable, "-m", "monitor", *args]


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {"MONITOR_HOST_SPACING": "0", "MONITOR_TICK_SECONDS": "1", "MONITOR_LISTEN": "127.0.0.1:0"}
    )
    env.update(extra or {})
    return env


def _start_daemon(
    config: Path, db: str, env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    """`monitor run` as an operator starts it; its log (stderr) is kept for the assertions."""
    return subprocess.Popen(
        _monitor("--config", str(config), "--db", db, "run"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(env),
    )


def _one_feed_runtime(tmp_path: Path, feed_server: FeedServer, clock: FrozenClock) -> Runtime:
    """A migrated SQLite file and a runtime on a feeds.yaml with the one feed A (empty)."""
    from monitor.store.db import upgrade

    feed_server.serve("/a.xml", rss([]))
    db = f"sqlite:///{tmp_path / 'm.db'}"
    upgrade(db)
    path = write_config(tmp_path / "feeds.yaml", [{"name": "A", "url": feed_server.url("/a.xml")}])
    return make_runtime(path, db, clock)


def _add_feed_b(path: Path, feed_server: FeedServer, **extra: str) -> None:
    """An edit of feeds.yaml: feed A as before, and a new feed B."""
    feed_b = {"name": "B", "url": feed_server.url("/b.xml"), **extra}
    write_config(path, [{"name": "A", "url": feed_server.url("/a.xml")}, feed_b])


def test_poll_once_prints_alert_on_console_without_routes(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    feed_server.serve("/la.xml", rss([MEASURE]))
    config = write_config(
        tmp_path / "feeds.yaml", [{"name": "LA", "url": feed_server.url("/la.xml")}]
    )
    db = f"sqlite:///{tmp_path / 'm.db'}"
    result = subprocess.run(
        _monitor("--config", str(config), "--db", db, "poll", "--once"),
        capture_output=True,
        text=True,
        timeout=120,
        env=_env(),
    )
    assert result.returncode == 0, result.stderr
    assert "polled 1 feeds (0 failed): 1 new items, 1 flagged" in result.stdout
    assert "gateway" in result.stdout.lower()  # the console route printed the alert
    assert "poll feed=LA status=ok http=200" in result.stderr  # one log line per poll


def test_validate_names_the_line_and_field_of_a_bad_edit(tmp_path: Path) -> None:
    config = tmp_path / "feeds.yaml"
    config.write_text(
        "feeds:\n  - name: A\n    url: https://a.example.org/rss\n    interval: 5x\n",
        encoding="utf-8",
    )
    result = subprocess.run(
        _monitor("--config", str(config), "feeds", "validate"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "feeds.yaml:4" in result.stderr and "interval" in result.stderr


def test_sigterm_stops_the_daemon_within_ten_seconds(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    feed_server.serve("/la.xml", rss([MEASURE]))
    feed_server.fault("/slow.xml", "drip", interval_s=1.0)
    feeds = [
        {"name": "LA", "url": feed_server.url("/la.xml")},
        {"name": "Slow", "url": feed_server.url("/slow.xml")},
    ]
    config = write_config(tmp_path / "feeds.yaml", feeds)
    db = f"sqlite:///{tmp_path / 'm.db'}"
    process = _start_daemon(config, db)
    try:
        deadline = time.monotonic() + 60
        while feed_server.hits("/slow.xml") == 0 or feed_server.hits("/la.xml") == 0:
            assert time.monotonic() < deadline, "daemon never polled"
            assert process.poll() is None, process.communicate()[1]
            time.sleep(0.2)
        time.sleep(2.5)  # let a tick store the fast feed while the slow one drips
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=15)
        took = time.monotonic() - started
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, stderr
    assert took < 10, f"took {took:.1f}s"
    assert "monitor stopped" in stderr
    from monitor.store.db import make_engine, make_sessions

    engine = make_engine(db)
    with make_sessions(engine)() as session:
        rows = {row.name: row for row in session.scalars(select(FeedRow))}
    engine.dispose()
    assert rows["LA"].last_success_at is not None
    assert rows["Slow"].lease_until is None  # given back, so a restart polls it at once


def test_edit_of_feeds_yaml_is_applied_and_a_bad_edit_keeps_the_last_good(
    tmp_path: Path,
    feed_server: FeedServer,
    clock: FrozenClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    runtime = _one_feed_runtime(tmp_path, feed_server, clock)
    path = runtime.settings.config_path
    daemon = Daemon(runtime)

    _add_feed_b(path, feed_server, country="KH")
    daemon._reload_if_changed()
    assert [feed.name for feed in runtime.config.feeds] == ["A", "B"]
    with runtime.sessions() as session:
        assert {row.name for row in session.scalars(select(FeedRow))} == {"A", "B"}

    edited = path.read_text().replace("country: KH", "country: KH\n    intervall: 10m")
    path.write_text(edited, encoding="utf-8")
    with caplog.at_level(logging.ERROR):
        daemon._reload_if_changed()
    assert [feed.name for feed in runtime.config.feeds] == ["A", "B"]
    assert "keeping the last good one" in caplog.text and "intervall" in caplog.text
    assert "feeds.yaml:" in caplog.text

    write_config(path, [{"name": "B", "url": feed_server.url("/b.xml")}])
    daemon._reload_if_changed()
    with runtime.sessions() as session:
        rows = {row.name: row.enabled for row in session.scalars(select(FeedRow))}
    assert rows == {"A": False, "B": True}  # removed from the file: disabled, history kept
    runtime.close()


def test_the_daemon_polls_at_once_not_a_tick_after_start(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    """A long tick must not delay the first poll: an operator who starts `monitor run`
    expects the feeds fetched right away, and a restart must not leave a gap."""
    feed_server.serve("/la.xml", rss([MEASURE]))
    config = write_config(
        tmp_path / "feeds.yaml", [{"name": "LA", "url": feed_server.url("/la.xml")}]
    )
    db = f"sqlite:///{tmp_path / 'm.db'}"
    process = _start_daemon(config, db, {"MONITOR_TICK_SECONDS": "120"})
    try:
        deadline = time.monotonic() + 60
        while feed_server.hits("/la.xml") == 0:
            assert time.monotonic() < deadline, "no poll within 60 s of a 120 s tick"
            assert process.poll() is None, process.communicate()[1]
            time.sleep(0.2)
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0


def test_a_stop_stuck_in_a_job_is_cut_short_at_the_deadline(
    tmp_path: Path, feed_server: FeedServer, clock: FrozenClock
) -> None:
    import threading

    runtime = _one_feed_runtime(tmp_path, feed_server, clock)
    sending, release = threading.Event(), threading.Event()

    def stuck_send(stop: object = None) -> None:  # a target that never answers
        sending.set()
        release.wait(30)

    runtime.delivery.deliver_due = stuck_send  # type: ignore[method-assign,assignment]
    exits: list[tuple[int, float]] = []
    daemon = Daemon(
        runtime,
        stop_deadline_s=1.0,
        exit_now=lambda code: (exits.append((code, time.monotonic())), release.set()),
    )
    daemon.start()
    assert sending.wait(10), "the delivery job never ran"
    started = time.monotonic()
    stopper = threading.Thread(target=daemon.stop)
    stopper.start()
    stopper.join(15)
    assert not stopper.is_alive()
    [(code, at)] = exits
    assert code == 1
    assert 0.9 <= at - started < 3


def test_a_reload_that_could_not_be_applied_is_tried_again(
    tmp_path: Path, feed_server: FeedServer, clock: FrozenClock
) -> None:
    from sqlalchemy.exc import OperationalError

    runtime = _one_feed_runtime(tmp_path, feed_server, clock)
    path = runtime.settings.config_path
    daemon = Daemon(runtime)
    _add_feed_b(path, feed_server)
    apply = runtime.apply_config
    calls: list[int] = []

    def database_away_once(config: object) -> None:
        calls.append(1)
        if len(calls) == 1:
            raise OperationalError("UPDATE feeds", {}, Exception("database is restarting"))
        apply(config)  # type: ignore[arg-type]

    runtime.apply_config = database_away_once  # type: ignore[method-assign]
    with pytest.raises(OperationalError):
        daemon._reload_if_changed()
    daemon._reload_if_changed()  # same file, not applied yet: applied now
    assert len(calls) == 2
    with runtime.sessions() as session:
        assert {row.name for row in session.scalars(select(FeedRow))} == {"A", "B"}
    path.unlink()  # replaced by an editor: missing for a moment
    daemon._reload_if_changed()
    assert [feed.name for feed in runtime.config.feeds] == ["A", "B"]
    runtime.close()


def test_the_daemon_waits_for_a_database_that_is_not_there_yet(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    """A database that cannot be reached at start (here: its directory is not mounted yet)
    is waited for, with a warning, instead of ending the daemon."""
    feed_server.serve("/la.xml", rss([MEASURE]))
    config = write_config(
        tmp_path / "feeds.yaml", [{"name": "LA", "url": feed_server.url("/la.xml")}]
    )
    volume = tmp_path / "volume"
    process = _start_daemon(config, f"sqlite:///{volume / 'm.db'}")
    try:
        time.sleep(3)
        assert process.poll() is None, process.communicate()[1]
        volume.mkdir()  # the volume appears
        deadline = time.monotonic() + 60
        while feed_server.hits("/la.xml") == 0:
            assert time.monotonic() < deadline, "the daemon never started polling"
            assert process.poll() is None, process.communicate()[1]
            time.sleep(0.2)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
    assert "database not reachable at start" in stderr
    assert "monitor stopped" in stderr and process.returncode == 0


def test_removing_a_route_with_unsent_alerts_says_they_wait(
    tmp_path: Path, feed_server: FeedServer, clock: FrozenClock, caplog: pytest.LogCaptureFixture
) -> None:
    from monitor.store.models import AlertRow

    runtime = _one_feed_runtime(tmp_path, feed_server, clock)
    path = runtime.settings.config_path
    feeds = [{"name": "A", "url": feed_server.url("/a.xml")}]
    routes: list[dict[str, object]] = [
        {"name": "team", "url": "json://127.0.0.1:9/hook"},
        {"name": "ops", "url": "json://127.0.0.1:9/ops"},
    ]
    daemon = Daemon(runtime)
    write_config(path, feeds, routes)
    daemon._reload_if_changed()
    assert set(runtime.targets) == {"team", "ops"}
    with runtime.sessions.begin() as session:
        session.add_all(
            AlertRow(route="team", dedup_key=f"k{n}", kind="new", status="pending",
                     payload={}, due_at=clock.now(), created_at=clock.now())
            for n in range(2)
        )  # fmt: skip
    write_config(path, feeds, routes[1:])
    with caplog.at_level(logging.WARNING):
        daemon._reload_if_changed()
    assert "route team was removed from the config with 2 alerts not yet sent" in caplog.text
    assert "ops" not in caplog.text
    runtime.close()


def test_the_prune_job_applies_the_retention_of_feeds_yaml(
    tmp_path: Path, feed_server: FeedServer, clock: FrozenClock, caplog: pytest.LogCaptureFixture
) -> None:
    """The job deletes the fetch log older than retention.fetch_log by the runtime's clock."""
    from datetime import timedelta

    from sqlalchemy import func, insert

    from monitor.store.db import upgrade
    from monitor.store.models import FetchLogRow

    feed_server.serve("/a.xml", rss([]))
    db = f"sqlite:///{tmp_path / 'm.db'}"
    upgrade(db)
    path = write_config(
        tmp_path / "feeds.yaml",
        [{"name": "A", "url": feed_server.url("/a.xml")}],
        extra="retention:\n  fetch_log: 10d\n  batch_size: 100",
    )
    runtime = make_runtime(path, db, clock)
    runtime.sync_feeds()
    with runtime.sessions.begin() as session:
        feed_id = session.scalar(select(FeedRow.id))
        for age_days, count in ((11, 250), (9, 5)):
            row = {"feed_id": feed_id, "started_at": clock.now() - timedelta(days=age_days)}
            session.execute(insert(FetchLogRow), [{**row, "outcome": "ok"}] * count)
    daemon = Daemon(runtime)
    with caplog.at_level(logging.INFO, logger="monitor.daemon.scheduler"):
        daemon._prune()
    with runtime.sessions() as session:
        assert session.scalar(select(func.count(FetchLogRow.id))) == 5
    assert "fetch_log=250 in 6 batches" in caplog.text  # 3 of log, one look at each other
    runtime.close()
