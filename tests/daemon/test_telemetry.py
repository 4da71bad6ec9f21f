"""The daemon's counters move with real polls, real deliveries, job runs and reloads."""

from __future__ import annotations

import platform
from datetime import timedelta
from pathlib import Path

from prometheus_client import CollectorRegistry

from monitor import __version__
from monitor.clock import FrozenClock
from monitor.daemon.bootstrap import Runtime, Settings, build_runtime
from monitor.daemon.scheduler import Daemon
from monitor.daemon.telemetry import POLL_ERROR_KINDS, Telemetry, error_class
from monitor.intake.reader import ProcessReader
from monitor.store.db import upgrade
from tests.support.feedserver import FeedServer, rss
from tests.support.receivers import WebhookReceiver
from tests.support.stack import make_runtime, write_config

MEASURE = {
    "title": "Vietnam orders telecom operators to block Telegram nationwide",
    "link": "https://news.example.org/vn/telegram-block",
    "guid": "vn-telegram-1",
    "description": "The Ministry of Information and Communications ordered internet service "
    "providers to block access to the messaging app Telegram within 24 hours.",
    "pubDate": "Mon, 23 Nov 2026 06:00:00 +0000",
}
UNRELATED = {
    "title": "Local football club wins the regional cup",
    "link": "https://news.example.org/sport/cup",
    "guid": "sport-1",
    "description": "The team celebrated in the city centre after a late goal in extra time.",
    "pubDate": "Mon, 23 Nov 2026 05:00:00 +0000",
}


def value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    found = registry.get_sample_value(name, labels)
    assert found is not None, (name, labels)
    return found


def _runtime(
    tmp_path: Path,
    clock: FrozenClock,
    feeds: list[dict[str, str]],
    routes: list[dict[str, object]] | None = None,
    env: dict[str, str] | None = None,
) -> Runtime:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    upgrade(url)
    config = write_config(tmp_path / "feeds.yaml", feeds, routes or [])
    return make_runtime(config, url, clock, env)


def test_error_kinds_fold_into_a_few_classes() -> None:
    assert error_class("http_403") == error_class("not_found") == "http_4xx"
    assert error_class("http_502") == error_class("unavailable") == "http_5xx"
    assert error_class("connect") == error_class("protocol") == "network"
    assert error_class("not_a_feed") == error_class("decode") == "parse"
    for unknown in ("bad_url", "redirect_loop", "internal", "http_", "something_new", None):
        assert error_class(unknown) == "other"
    assert len(POLL_ERROR_KINDS) <= 12


def test_every_known_label_value_starts_at_zero() -> None:
    telemetry = Telemetry()
    r = telemetry.registry
    for outcome in ("ok", "not_modified", "error", "held_back"):
        assert value(r, "monitor_polls_total", outcome=outcome) == 0
    for kind in POLL_ERROR_KINDS:
        assert value(r, "monitor_poll_errors_total", kind=kind) == 0
    for result in ("sent", "failed", "dead"):
        assert value(r, "monitor_alert_deliveries_total", result=result) == 0
    for result in ("ok", "invalid", "error"):
        assert value(r, "monitor_config_reloads_total", result=result) == 0
    assert value(r, "monitor_scheduler_job_runs_total", job="poll", result="missed") == 0
    assert (
        value(r, "monitor_build_info", version=__version__, python=platform.python_version()) == 1
    )
    assert value(r, "process_start_time_seconds") > 0


def test_two_telemetries_in_one_process_have_their_own_registries() -> None:
    """No global registry: a second Telemetry registers the same names without an error."""
    first, second = Telemetry(), Telemetry()
    first.delivery_result("sent")
    assert value(first.registry, "monitor_alert_deliveries_total", result="sent") == 1
    assert value(second.registry, "monitor_alert_deliveries_total", result="sent") == 0


def test_one_real_poll_moves_the_poll_counters(
    tmp_path: Path, feed_server: FeedServer, clock: FrozenClock
) -> None:
    feed_server.serve("/vn.xml", rss([MEASURE, UNRELATED]))
    feed_server.fault("/broken.xml", "status", status=502)
    runtime = _runtime(
        tmp_path,
        clock,
        [
            {"name": "VN News", "url": feed_server.url("/vn.xml"), "country": "VN"},
            {"name": "Broken", "url": feed_server.url("/broken.xml")},
        ],
    )
    r = runtime.telemetry.registry
    try:
        report = runtime.poller.run_once()
        assert (report.polled, report.new_items, report.flagged) == (2, 2, 1)
        assert value(r, "monitor_polls_total", outcome="ok") == 1
        assert value(r, "monitor_polls_total", outcome="error") == 1
        assert value(r, "monitor_poll_errors_total", kind="http_5xx") == 1
        assert value(r, "monitor_items_stored_total") == 2
        assert value(r, "monitor_items_flagged_total") == 1
        assert value(r, "monitor_fetch_response_bytes_total") > 200
        assert value(r, "monitor_fetch_duration_seconds_count", outcome="ok") == 1
        assert value(r, "monitor_fetch_duration_seconds_count", outcome="error") == 1
        # The runtime's clock, not the wall clock: the poll finished at (about) its now.
        last = value(r, "monitor_last_poll_success_timestamp_seconds")
        assert abs(last - clock.now().timestamp()) < 60

        clock.advance(timedelta(minutes=20))
        runtime.poller.run_once()  # the feed server answers the conditional GET with a 304
        assert value(r, "monitor_polls_total", outcome="not_modified") == 1
        assert value(r, "monitor_items_stored_total") == 2
        assert value(r, "monitor_last_poll_success_timestamp_seconds") > last
    finally:
        runtime.close()


def test_deliveries_to_a_real_webhook_are_counted_and_timed(
    tmp_path: Path, feed_server: FeedServer, webhook: WebhookReceiver, clock: FrozenClock
) -> None:
    feed_server.serve("/vn.xml", rss([MEASURE]))
    runtime = _runtime(
        tmp_path,
        clock,
        [{"name": "VN News", "url": feed_server.url("/vn.xml"), "country": "VN"}],
        routes=[{"name": "hook", "url": "${HOOK_URL}", "min_score": 0.5}],
        env={"HOOK_URL": webhook.apprise_url()},
    )
    r = runtime.telemetry.registry
    try:
        webhook.status = 500
        runtime.poller.run_once()
        assert runtime.delivery.deliver_due().failed == 1
        assert value(r, "monitor_alert_deliveries_total", result="failed") == 1
        assert value(r, "monitor_alert_deliveries_total", result="sent") == 0

        webhook.status = 200
        clock.advance(timedelta(hours=2))  # past the retry's backoff
        assert runtime.delivery.deliver_due().sent == 1
        webhook.wait_for(2)
        assert value(r, "monitor_alert_deliveries_total", result="sent") == 1
        assert value(r, "monitor_alert_delivery_duration_seconds_count") == 2
        assert value(r, "monitor_alert_delivery_duration_seconds_sum") > 0
    finally:
        runtime.close()


def test_job_runs_and_config_reloads_are_counted(
    tmp_path: Path, feed_server: FeedServer, clock: FrozenClock
) -> None:
    feed_server.serve("/a.xml", rss([UNRELATED]))
    runtime = _runtime(tmp_path, clock, [{"name": "A", "url": feed_server.url("/a.xml")}])
    r = runtime.telemetry.registry
    daemon = Daemon(runtime)
    try:
        daemon._guarded(lambda: None, "prune")()
        daemon._guarded(lambda: 1 / 0, "prune")()
        assert value(r, "monitor_scheduler_job_runs_total", job="prune", result="ok") == 1
        assert value(r, "monitor_scheduler_job_runs_total", job="prune", result="error") == 1

        path = runtime.settings.config_path
        path.write_text(path.read_text() + "    intervall: 10m\n", encoding="utf-8")
        daemon._reload_if_changed()
        assert value(r, "monitor_config_reloads_total", result="invalid") == 1
        write_config(path, [{"name": "B", "url": feed_server.url("/a.xml")}])
        daemon._reload_if_changed()
        assert value(r, "monitor_config_reloads_total", result="ok") == 1
        assert value(r, "monitor_config_last_reload_success_timestamp_seconds") == (
            clock.now().timestamp()
        )
    finally:
        runtime.close()


def test_feeds_parsed_in_worker_processes_are_counted_in_the_parent(
    tmp_path: Path, feed_server: FeedServer, clock: FrozenClock
) -> None:
    """The parser processes (started with `python -c`) hold no metrics: the poller counts
    what they hand back, so the parent's registry sees every feed."""
    feed_server.serve("/vn.xml", rss([MEASURE, UNRELATED]))
    url = f"sqlite:///{tmp_path / 'm.db'}"
    upgrade(url)
    config = write_config(
        tmp_path / "feeds.yaml", [{"name": "VN", "url": feed_server.url("/vn.xml")}]
    )
    settings = Settings(config_path=config, db_url=url, workers=2, parse_processes=1)
    runtime = build_runtime(settings, env={}, clock=clock)
    try:
        assert isinstance(runtime.poller.fetch_context.reader, ProcessReader)
        runtime.sync_feeds()
        runtime.poller.run_once()
        r = runtime.telemetry.registry
        assert value(r, "monitor_polls_total", outcome="ok") == 1
        assert value(r, "monitor_items_stored_total") == 2
    finally:
        runtime.close()
