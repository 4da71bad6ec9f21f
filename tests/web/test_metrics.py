"""/metrics: a `metrics` token, the golden list of names, values after a real poll, bounded
labels, route templates, a database failure that does not break the scrape, shipped rules."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from ruamel.yaml import YAML

from monitor.clock import FrozenClock
from monitor.daemon.bootstrap import Runtime, Settings
from monitor.store import tokens
from monitor.store.db import make_engine, make_sessions
from monitor.web.build import WebSurface, build_web
from monitor.web.metrics import DatabaseCollector
from tests.support.feedserver import FeedServer, rss
from tests.support.stack import make_runtime, write_config
from tests.support.webdata import add_feed

BASE = "http://127.0.0.1:8080"
DEPLOY_RULES = Path(__file__).resolve().parents[2] / "deploy" / "prometheus-alerts.yml"

# Every process: what the web alone (`monitor serve`) exports.
WEB_NAMES = {
    "monitor_build_info",
    "monitor_feeds",
    "monitor_feeds_due",
    "monitor_events",
    "monitor_alerts_outbox",
    "monitor_alert_oldest_pending_timestamp_seconds",
    "monitor_db_connections_in_use",
    "monitor_metrics_collect_duration_seconds",
    "monitor_metrics_collect_errors_total",
    "process_cpu_seconds_total",
    "process_resident_memory_bytes",
    "process_start_time_seconds",
    "python_gc_collections_total",
    "python_info",
}
# Added by the daemon's telemetry (`monitor run`), present before its first poll.
DAEMON_NAMES = {
    "monitor_polls_total",
    "monitor_poll_errors_total",
    "monitor_fetch_duration_seconds",
    "monitor_fetch_response_bytes_total",
    "monitor_items_stored_total",
    "monitor_items_flagged_total",
    "monitor_last_poll_success_timestamp_seconds",
    "monitor_poll_tick_duration_seconds",
    "monitor_alert_deliveries_total",
    "monitor_alert_delivery_duration_seconds",
    "monitor_config_reloads_total",
    "monitor_config_last_reload_success_timestamp_seconds",
    "monitor_scheduler_job_runs_total",
}
# The web's own, from its first request on.
HTTP_NAMES = {"monitor_http_requests_total", "monitor_http_request_duration_seconds"}
MEASURE = {
    "title": "Vietnam orders telecom operators to block Telegram nationwide",
    "link": "https://news.example.org/vn/telegram-block",
    "guid": "vn-telegram-1",
    "description": "The Ministry of Information and Communications ordered internet service "
    "providers to block access to the messaging app Telegram within 24 hours.",
    "pubDate": "Mon, 23 Nov 2026 06:00:00 +0000",
}


class Scrape:
    """One /metrics answer, parsed."""

    def __init__(self, text: str) -> None:
        self.families = list(text_string_to_metric_families(text))

    @property
    def names(self) -> set[str]:
        """Metric names as written in code and PromQL (the parser drops a counter's _total)."""
        return {
            family.name + ("_total" if family.type == "counter" else "")
            for family in self.families
            if not family.name.endswith("_created")
        }

    @property
    def sample_names(self) -> set[str]:
        return {sample.name for family in self.families for sample in family.samples}

    def value(self, name: str, **labels: str) -> float | None:
        for family in self.families:
            for sample in family.samples:
                if sample.name == name and sample.labels == labels:
                    return float(sample.value)
        return None

    def label_values(self) -> dict[tuple[str, str], set[str]]:
        """(metric, label) -> every value seen."""
        seen: dict[tuple[str, str], set[str]] = defaultdict(set)
        for family in self.families:
            for sample in family.samples:
                for label, value in sample.labels.items():
                    seen[(family.name, label)].add(value)
        return seen


@pytest.fixture
def surface(web_db: str, tmp_path: Path, clock: FrozenClock) -> Iterator[WebSurface]:
    """`monitor serve`: the web alone, reading the database at every scrape."""
    settings = Settings(config_path=tmp_path / "feeds.yaml", db_url=web_db, metrics_refresh_s=0)
    web = build_web(settings, clock=clock)
    yield web
    web.close()


def _token(web: WebSurface, clock: FrozenClock, *scopes: str) -> str:
    with web.context.sessions.begin() as session:
        return tokens.create_token(session, "-".join(scopes), scopes, clock.now())


def _scraper(web: WebSurface, clock: FrozenClock) -> Callable[[], Scrape]:
    token = _token(web, clock, "metrics")
    client = TestClient(web.app, base_url=BASE)

    def scrape() -> Scrape:
        response = client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
        return Scrape(response.text)

    return scrape


def test_metrics_need_a_metrics_token(surface: WebSurface, clock: FrozenClock) -> None:
    client = TestClient(surface.app, base_url=BASE)
    assert client.get("/metrics").status_code == 401
    read = _token(surface, clock, "read")
    refused = client.get("/metrics", headers={"Authorization": f"Bearer {read}"})
    assert refused.status_code == 403
    assert "monitor_" not in refused.text
    metrics = _token(surface, clock, "metrics")
    assert client.get("/metrics", headers={"Authorization": f"Bearer {metrics}"}).status_code == 200


def test_the_web_alone_exports_database_gauges_and_no_daemon_counters(
    surface: WebSurface, clock: FrozenClock
) -> None:
    scrape = _scraper(surface, clock)()
    assert scrape.names >= WEB_NAMES
    assert not DAEMON_NAMES & scrape.names
    for state in ("ok", "failing", "disabled", "gone"):
        assert scrape.value("monitor_feeds", state=state) == 0
    assert scrape.value("monitor_alerts_outbox", status="dead") == 0
    assert scrape.value("monitor_db_connections_in_use", engine="web") is not None


@pytest.fixture
def daemon_web(
    tmp_path: Path, web_db: str, feed_server: FeedServer, clock: FrozenClock
) -> Iterator[tuple[Runtime, WebSurface]]:
    """`monitor run`: a real runtime over the feed server, and the web serving its registry."""
    feed_server.serve("/vn.xml", rss([MEASURE]))
    feeds = [{"name": "VN News", "url": feed_server.url("/vn.xml"), "country": "VN"}]
    config = write_config(tmp_path / "feeds.yaml", feeds)
    runtime = make_runtime(config, web_db, clock)
    settings = Settings(config_path=config, db_url=web_db, metrics_refresh_s=0)
    web = build_web(settings, clock=clock, telemetry=runtime.telemetry)
    yield runtime, web
    web.close()
    runtime.close()


def test_golden_names_before_the_first_poll_and_values_after_one(
    daemon_web: tuple[Runtime, WebSurface], clock: FrozenClock
) -> None:
    runtime, web = daemon_web
    scrape = _scraper(web, clock)
    before = scrape()
    assert before.names >= WEB_NAMES | DAEMON_NAMES
    golden = {name for name in WEB_NAMES | DAEMON_NAMES | HTTP_NAMES if name.startswith("monitor_")}
    assert {name for name in before.names if name.startswith("monitor_")} == golden
    assert before.value("monitor_polls_total", outcome="ok") == 0
    assert before.value("monitor_feeds", state="ok") == 1
    assert before.value("monitor_feeds_due") == 1
    assert before.value("monitor_db_connections_in_use", engine="daemon") == 0

    runtime.poller.run_once()
    after = scrape()
    assert after.value("monitor_polls_total", outcome="ok") == 1
    assert after.value("monitor_items_stored_total") == 1
    assert after.value("monitor_items_flagged_total") == 1
    assert after.value("monitor_fetch_duration_seconds_count", outcome="ok") == 1
    assert after.value("monitor_feeds_due") == 0  # polled: due again in its interval
    assert after.value("monitor_events", stage="enacted") == 1  # "orders ... to block"
    assert after.value("monitor_alerts_outbox", status="pending") == 1  # the console route
    oldest = after.value("monitor_alert_oldest_pending_timestamp_seconds")
    assert oldest == pytest.approx(clock.now().timestamp(), abs=60)
    assert after.value("monitor_http_requests_total", route="/metrics", method="GET", code="2xx")

    runtime.delivery.deliver_due()
    delivered = scrape()
    assert delivered.value("monitor_alert_deliveries_total", result="sent") == 1
    assert delivered.value("monitor_alerts_outbox", status="pending") == 0
    assert delivered.value("monitor_alert_oldest_pending_timestamp_seconds") == 0


def test_http_metrics_use_route_templates_never_raw_paths(
    surface: WebSurface, clock: FrozenClock
) -> None:
    def probe(thing_id: int) -> dict[str, int]:
        return {"thing": thing_id}

    surface.app.add_api_route("/probe/{thing_id}", probe)
    client = TestClient(surface.app, base_url=BASE)
    for thing in (1, 22, 333):
        assert client.get(f"/probe/{thing}").status_code == 200
    for junk in ("/wp-login.php", "/.env", "/events/1/../../etc/passwd"):
        client.get(junk)
    client.request("PROPFIND", "/probe/1")
    scrape = _scraper(surface, clock)()
    routes = scrape.label_values()[("monitor_http_requests", "route")]
    assert "/probe/{thing_id}" in routes and "other" in routes
    assert not any(re.search(r"/probe/\d", route) for route in routes)
    assert not {"/wp-login.php", "/.env"} & routes
    assert (
        scrape.value(
            "monitor_http_requests_total", route="/probe/{thing_id}", method="GET", code="2xx"
        )
        == 3
    )
    assert scrape.label_values()[("monitor_http_requests", "method")] <= {"GET", "other"}
    assert scrape.value("monitor_http_request_duration_seconds_count", route="other") == 3


def test_no_label_has_more_than_a_handful_of_values(
    daemon_web: tuple[Runtime, WebSurface], clock: FrozenClock
) -> None:
    runtime, web = daemon_web
    scrape = _scraper(web, clock)
    client = TestClient(web.app, base_url=BASE)
    for path in ("/healthz", "/readyz", "/nothing/1", "/nothing/2", "/api/v1/openapi.json"):
        client.get(path)
    runtime.poller.run_once()
    templates = {getattr(route, "path", "") for route in web.app.routes} | {"other"}
    for (metric, label), values in scrape().label_values().items():
        if label == "route":
            assert values <= templates, (metric, values - templates)
        elif label != "le":
            assert len(values) <= 12, (metric, label, sorted(values))


def test_a_database_failure_is_counted_and_the_rest_still_served(
    surface: WebSurface, clock: FrozenClock, tmp_path: Path
) -> None:
    scrape = _scraper(surface, clock)
    collector = surface.context.extras["metrics_collector"]
    assert isinstance(collector, DatabaseCollector)
    broken = make_engine(f"sqlite:///{tmp_path / 'no-such-dir' / 'x.db'}")
    collector.sessions = make_sessions(broken)
    try:
        failed = scrape()
    finally:
        broken.dispose()
    assert failed.value("monitor_metrics_collect_errors_total") == 1
    assert "monitor_feeds" not in failed.names
    assert {"monitor_build_info", "process_start_time_seconds"} <= failed.names


def test_database_gauges_are_cached_for_the_refresh_interval(
    web_db: str, tmp_path: Path, clock: FrozenClock
) -> None:
    settings = Settings(config_path=tmp_path / "feeds.yaml", db_url=web_db)  # 60 s default
    web = build_web(settings, clock=clock)
    try:
        scrape = _scraper(web, clock)
        assert scrape().value("monitor_feeds", state="ok") == 0
        with web.context.sessions.begin() as session:
            add_feed(session, "fresh", clock.now())
        assert scrape().value("monitor_feeds", state="ok") == 0  # cached
        web.context.extras["metrics_collector"].refresh_s = 0
        assert scrape().value("monitor_feeds", state="ok") == 1
    finally:
        web.close()


def test_feed_states_are_counted(surface: WebSurface, clock: FrozenClock) -> None:
    with surface.context.sessions.begin() as session:
        add_feed(session, "fine", clock.now())
        add_feed(session, "failing", clock.now(), failures=3, error_kind="timeout")
        add_feed(session, "off", clock.now()).enabled = False
        add_feed(session, "went", clock.now(), failures=1).gone = True
    clock.advance(timedelta(days=1))
    scrape = _scraper(surface, clock)()
    states = {
        s: scrape.value("monitor_feeds", state=s) for s in ("ok", "failing", "disabled", "gone")
    }
    assert states == {"ok": 1, "failing": 1, "disabled": 1, "gone": 1}
    assert scrape.value("monitor_feeds_due") == 2  # the enabled ones, due after a day


def test_every_metric_in_the_shipped_alert_rules_is_exported(
    daemon_web: tuple[Runtime, WebSurface], clock: FrozenClock
) -> None:
    _runtime, web = daemon_web
    scrape = _scraper(web, clock)()
    exported = scrape.names | scrape.sample_names
    rules = YAML(typ="safe").load(DEPLOY_RULES.read_text(encoding="utf-8"))
    named: set[str] = set()
    for group in rules["groups"]:
        for rule in group["rules"]:
            assert rule["alert"] and rule["labels"]["severity"] in {"critical", "warning", "info"}
            assert rule["annotations"]["summary"]
            named |= set(re.findall(r"\b(?:monitor|process|python)_[a-z0-9_]+", rule["expr"]))
    assert len(named) >= 5
    assert named <= exported, named - exported
