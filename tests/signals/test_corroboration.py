"""Corroboration end to end: events in a real database, clients over real sockets to a local
replay server serving the recorded OONI/IODA/Radar responses (and documented-shape fixtures
where no recording exists: tests/signals/fixtures/NOTE.md), verdicts, schedule and alerts."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from monitor.alerts.markup import BodyFormat
from monitor.alerts.outbox import Outbox, payload_to_message
from monitor.alerts.render import render
from monitor.alerts.routing import RouteRules
from monitor.clock import FrozenClock
from monitor.config.corroboration import CorroborationSpec
from monitor.domain import AlertMessage
from monitor.signals.corroborate import Corroborator, build_services, latest_verdicts
from monitor.store.db import make_engine, make_sessions
from monitor.store.models import AlertRow, CorroborationRow, EventRow
from tests.signals.replay import FIXTURES, ReplayServer, Reply

AGG = "/api/v1/aggregation"
TELEGRAM = "ooni-aggregation-telegram-CN-IR-RU-2025-03-01.json"
TELEGRAM_BASELINE = FIXTURES / "ooni-baseline-telegram-IR-long-standing.synthetic.json"
WEB_AS15598 = "ooni-aggregation-web_connectivity-by-domain-AS15598-2025-04-07.json"
RADAR_SD = "radar-annotations-outages-SD-2026-04-22-government-directed.json"
RADAR_DOCS = "radar-annotations-outages-UA-US-2022-docs-example.json"
NO_ANOMALIES = FIXTURES / "radar-traffic-anomalies-empty.synthetic.json"


@pytest.fixture
def sessions(db_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(db_url)
    yield make_sessions(engine)
    engine.dispose()


def spec_for(server: ReplayServer, **extra: object) -> CorroborationSpec:
    base = server.url
    data: dict[str, object] = {
        "ooni": {"base_url": base, "min_interval": 0},
        "ioda": {"base_url": base + "/v2", "min_interval": 0},
        "radar": {"base_url": base + "/client/v4", "min_interval": 0, "token": "${RADAR_T}"},
        "timeout": 1.0,
        **extra,
    }
    return CorroborationSpec.model_validate(data, context={"env": {"RADAR_T": "tok-123"}})


def corroborator(
    spec: CorroborationSpec, clock: FrozenClock, env: dict[str, str] | None = None
) -> tuple[Corroborator, httpx.Client]:
    client = httpx.Client(timeout=httpx.Timeout(spec.timeout))
    services = build_services(spec, client, clock, {"RADAR_T": "tok-123"} if env is None else env)
    return Corroborator(spec, services, Outbox([RouteRules(name="ops")]), clock), client


def add_event(
    sessions: sessionmaker[Session],
    *,
    country: str,
    categories: list[str],
    targets: list[str],
    reported: datetime,
    stage: str = "enforced",
) -> int:
    with sessions.begin() as session:
        row = EventRow(
            country=country,
            categories=categories,
            stage=stage,
            title=f"{country}: {', '.join(targets)} cut",
            fingerprint=b"",
            first_seen=reported,
            last_seen=reported,
            item_count=2,
            max_score=0.9,
            targets=targets,
            stage_changed_at=reported,
        )
        session.add(row)
        session.flush()
        # The event's own new-measure alert, queued before any check (as the recorder does).
        message = AlertMessage(
            "new", row.title, None, "feed", country, tuple(categories), stage, 0.9, (), (), reported
        )
        Outbox([RouteRules(name="ops")]).queue(
            session, message, f"event:{row.id}:new", reported, event_id=row.id
        )
        return row.id


def verdicts(sessions: sessionmaker[Session], event_id: int) -> dict[str, CorroborationRow]:
    with sessions() as session:
        rows = latest_verdicts(session, event_id)
        session.expunge_all()
    return {row.service: row for row in rows}


def alerts(sessions: sessionmaker[Session], event_id: int) -> list[AlertRow]:
    with sessions() as session:
        rows = list(
            session.scalars(
                select(AlertRow).where(AlertRow.event_id == event_id).order_by(AlertRow.id)
            )
        )
        session.expunge_all()
    return rows


def serve_ooni(
    replay: ReplayServer, signals: Path, test: str, window: str, baseline: Path | None
) -> None:
    replay.add(AGG, Reply.file(signals / window), test_name=test)
    if baseline is not None:
        replay.add(AGG, Reply.file(baseline), test_name=test, since="2025-02-21")


def test_platform_block_gets_ooni_counts_and_long_standing_block_is_told_apart(
    sessions: sessionmaker[Session], replay: ReplayServer, signals_dir: Path
) -> None:
    serve_ooni(replay, signals_dir, "telegram", TELEGRAM, TELEGRAM_BASELINE)
    reported = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    clock = FrozenClock(reported + timedelta(hours=2))
    event = add_event(
        sessions,
        country="IR",
        categories=["platform_block"],
        targets=["platform:telegram"],
        reported=reported,
    )
    checker, client = corroborator(spec_for(replay), clock)
    with client:
        assert checker.run(sessions) == 1
    found = verdicts(sessions, event)
    assert set(found) == {"ooni"}  # a platform block is OONI's, not IODA's or Radar's
    ooni = found["ooni"]
    assert ooni.verdict == "corroborated"
    assert ooni.before_report is True
    assert ooni.summary.startswith(
        "71 of 71 Telegram measurements in IR anomalous in the last 26 h (7-day baseline: 70 of 70)"
    )
    assert "already blocked before this report" in ooni.summary
    assert ooni.figures["window"]["measurements"] == 71  # CN's and RU's rows not counted
    assert "CC BY-NC-SA 4.0" in ooni.attribution
    assert (
        ooni.link is not None and "probe_cc=IR" in ooni.link and "test_name=telegram" in ooni.link
    )
    # The query asked for IR's Telegram test from the day before the report.
    asked = [q for p, q, _ in replay.requests if p == AGG]
    assert {q["since"] for q in asked} == {"2025-02-28", "2025-02-21"}
    assert all(q["probe_cc"] == "IR" and q["until"] in ("2025-03-02", "2025-02-28") for q in asked)
    # Next check at report + 6 h.
    assert ooni.next_check_at is not None
    assert ooni.next_check_at.replace(tzinfo=UTC) == reported + timedelta(hours=6)
    # Corroborated: an update alert that says so, with the figures and attribution.
    update = [a for a in alerts(sessions, event) if a.kind == "update"]
    assert len(update) == 1
    body = render(payload_to_message(update[0].payload), BodyFormat.TEXT).body
    assert "What changed: Measurements now corroborate the report (OONI)" in body
    assert "OONI: 71 of 71 Telegram" in body
    assert "Sources of the data: OONI (ooni.org), data CC BY-NC-SA 4.0" in body
    assert "now 2 reports" not in body


def test_new_block_and_recheck_without_repeat_alert(
    sessions: sessionmaker[Session], replay: ReplayServer, signals_dir: Path
) -> None:
    serve_ooni(
        replay,
        signals_dir,
        "facebook_messenger",
        "ooni-aggregation-facebook_messenger-CN-IR-RU-2025-03-01.json",
        FIXTURES / "ooni-baseline-facebook_messenger-IR-new.synthetic.json",
    )
    reported = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    clock = FrozenClock(reported + timedelta(minutes=5))
    event = add_event(
        sessions,
        country="IR",
        categories=["platform_block"],
        targets=["platform:facebook"],
        reported=reported,
    )
    checker, client = corroborator(
        spec_for(replay, ooni={"base_url": replay.url, "min_interval": 0, "cache_ttl": "0s"}), clock
    )
    with client:
        checker.run(sessions)
        ooni = verdicts(sessions, event)["ooni"]
        assert ooni.verdict == "corroborated" and ooni.before_report is False
        assert "(7-day baseline: 3 of 70) – consistent with blocking; new since the baseline" in (
            ooni.summary
        )
        assert checker.run(sessions) == 0  # nothing due before +6 h
        clock.advance(timedelta(hours=6))
        assert checker.run(sessions) == 1
        clock.advance(timedelta(hours=18))
        assert checker.run(sessions) == 1
        clock.advance(timedelta(hours=30))
        assert checker.run(sessions) == 0  # no checks after +24 h
    with sessions() as session:
        rows = session.scalars(
            select(CorroborationRow).where(CorroborationRow.event_id == event)
        ).all()
        assert len(rows) == 3
        assert [r.next_check_at is None for r in rows] == [True, True, True]
    # Same verdict three times: one update alert, not three.
    assert [a.kind for a in alerts(sessions, event)] == ["new", "update"]


def test_contradicting_and_thin_data(
    sessions: sessionmaker[Session], replay: ReplayServer, signals_dir: Path
) -> None:
    serve_ooni(
        replay, signals_dir, "whatsapp", "ooni-aggregation-whatsapp-CN-IR-RU-2025-03-01.json", None
    )
    serve_ooni(
        replay, signals_dir, "signal", "ooni-aggregation-signal-CN-IR-RU-2025-03-01.json", None
    )
    replay.add(AGG, Reply.file(signals_dir / WEB_AS15598), test_name="web_connectivity")
    reported = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    clock = FrozenClock(reported + timedelta(hours=1))
    whatsapp = add_event(
        sessions,
        country="IR",
        categories=["platform_block"],
        targets=["platform:whatsapp"],
        reported=reported,
    )
    signal_ru = add_event(
        sessions,
        country="RU",
        categories=["platform_block"],
        targets=["platform:signal"],
        reported=reported,
    )
    x_event = add_event(
        sessions,
        country="IR",
        categories=["platform_block"],
        targets=["platform:x"],
        reported=reported,
    )
    checker, client = corroborator(spec_for(replay), clock)
    with client:
        assert checker.run(sessions) == 3
    w = verdicts(sessions, whatsapp)["ooni"]
    assert w.verdict == "not_corroborated"
    assert w.summary.startswith("0 of 71 WhatsApp measurements in IR anomalous")
    s = verdicts(sessions, signal_ru)["ooni"]
    # 59 failures are left out of the denominator and said apart.
    assert s.summary.startswith(
        "535 of 579 Signal measurements in RU anomalous in the last 25 h, 59 failed"
    )
    assert s.verdict == "corroborated"
    x = verdicts(sessions, x_event)["ooni"]
    assert x.verdict == "no_data" and x.summary.startswith("no measurement data")
    update = [a for a in alerts(sessions, whatsapp) if a.kind == "update"]
    body = render(payload_to_message(update[0].payload), BodyFormat.TEXT).body
    assert "Measurements now contradict the report (OONI)" in body
    assert not [a for a in alerts(sessions, x_event) if a.kind == "update"]  # no data: no alert


def test_shutdown_gets_ioda_and_radar_verdicts(
    sessions: sessionmaker[Session], replay: ReplayServer, signals_dir: Path
) -> None:
    replay.add("/v2/outages/events", Reply.file(FIXTURES / "ioda-outages-events-SD.synthetic.json"))
    replay.add("/v2/outages/alerts", Reply.file(FIXTURES / "ioda-outages-alerts-SD.synthetic.json"))
    replay.add("/client/v4/radar/annotations/outages", Reply.file(signals_dir / RADAR_SD))
    reported = datetime(2026, 4, 22, 12, 30, tzinfo=UTC)
    clock = FrozenClock(datetime(2026, 4, 22, 16, 0, tzinfo=UTC))
    event = add_event(
        sessions,
        country="SD",
        categories=["shutdown"],
        targets=["network:internet"],
        reported=reported,
    )
    checker, client = corroborator(spec_for(replay), clock)
    with client:
        checker.run(sessions)
    found = verdicts(sessions, event)
    assert set(found) == {"ioda", "radar"}
    ioda = found["ioda"]
    assert ioda.verdict == "corroborated"
    assert ioda.summary == (
        "critical drop in active probing for Sudan (country/SD) since 11:45 UTC 22 Apr "
        "(12% of normal); 2 datasources: BGP, active probing"
    )
    assert "Georgia Tech" in ioda.attribution
    radar = found["radar"]
    assert radar.verdict == "corroborated"
    assert radar.summary == (
        "curated: government-directed nationwide outage in Sudan, Sudatel, "
        "SDN-MOBITEL, MTNSD, 22 Apr 11:45–15:15 UTC, 3.5 h"
    )
    assert radar.link == "https://bsky.app/profile/radar.cloudflare.com/post/3mjf6c7xbn22c"
    assert "CC BY-NC 4.0" in radar.attribution
    # The token went to Radar only, as a Bearer header.
    for path, query, headers in replay.requests:
        auth = {k.lower(): v for k, v in headers.items()}.get("authorization")
        assert (auth == "Bearer tok-123") == path.startswith("/client/v4/radar")
        if path == "/v2/outages/events":
            assert query["entityType"] == "country" and query["entityCode"] == "SD"
            assert query["ignoreMethods"] == "*.sarima"
    update = [a for a in alerts(sessions, event) if a.kind == "update"]
    body = render(payload_to_message(update[0].payload), BodyFormat.TEXT).body
    assert "Measurements now corroborate the report (IODA, Cloudflare Radar)" in body


def test_radar_without_token_is_not_checked_and_costs_no_request(
    sessions: sessionmaker[Session], replay: ReplayServer
) -> None:
    replay.add(
        "/v2/outages/events", Reply.file(FIXTURES / "ioda-outages-events-empty.synthetic.json")
    )
    reported = datetime(2026, 4, 22, 12, 30, tzinfo=UTC)
    clock = FrozenClock(reported + timedelta(hours=1))
    event = add_event(
        sessions,
        country="SD",
        categories=["shutdown"],
        targets=["network:internet"],
        reported=reported,
    )
    spec = CorroborationSpec.model_validate(
        {
            "ooni": {"base_url": replay.url},
            "ioda": {"base_url": replay.url + "/v2", "min_interval": 0},
        }
    )
    checker, client = corroborator(spec, clock, env={})
    with client:
        checker.run(sessions)
    found = verdicts(sessions, event)
    assert found["radar"].verdict == "not_checked"
    assert found["radar"].summary == "not checked (no API token configured)"
    assert found["radar"].next_check_at is None
    assert found["ioda"].verdict == "not_corroborated"
    assert found["ioda"].summary == "no outage events for Sudan (country/SD) in the window"
    assert not [p for p, _, _ in replay.requests if "radar" in p]


def test_429_500_and_hang_leave_alerts_alone_and_are_retried(
    sessions: sessionmaker[Session], replay: ReplayServer, signals_dir: Path
) -> None:
    replay.add(AGG, Reply(429, "Quota exceeded", "text/plain", {"Retry-After": "120"}))
    replay.add("/v2/outages/events", Reply(500, '{"error": "internal"}'))
    replay.add("/client/v4/radar/annotations/outages", Reply(delay=3.0))  # past the 1 s timeout
    reported = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    clock = FrozenClock(reported + timedelta(minutes=2))
    platform = add_event(
        sessions,
        country="IR",
        categories=["platform_block"],
        targets=["platform:telegram"],
        reported=reported,
    )
    shutdown = add_event(
        sessions,
        country="SD",
        categories=["shutdown"],
        targets=["network:internet"],
        reported=reported,
    )
    before = [(a.id, a.status, a.due_at) for e in (platform, shutdown) for a in alerts(sessions, e)]
    checker, client = corroborator(spec_for(replay), clock)
    with client:
        started = time.monotonic()
        assert checker.run(sessions) == 2
        assert time.monotonic() - started < 2.8  # the hang cost one timeout, not more
        found = {**verdicts(sessions, platform), **verdicts(sessions, shutdown)}
        assert {s: r.verdict for s, r in found.items()} == {
            "ooni": "unavailable",
            "ioda": "unavailable",
            "radar": "unavailable",
        }
        assert found["ooni"].summary == "service unreachable (HTTP 429)"
        assert found["ioda"].summary == "service unreachable (HTTP 500)"
        assert found["radar"].summary == "service unreachable (timed out)"
        # The new-measure alerts are untouched and no update was queued.
        after = [
            (a.id, a.status, a.due_at) for e in (platform, shutdown) for a in alerts(sessions, e)
        ]
        assert after == before
        # Retried after retry_after (30 min), and by then the services answer again.
        retry = found["ooni"].next_check_at
        assert retry is not None and retry.replace(tzinfo=UTC) == clock.now() + timedelta(
            minutes=30
        )
        serve_ooni(replay, signals_dir, "telegram", TELEGRAM, TELEGRAM_BASELINE)
        replay.add(
            "/v2/outages/events", Reply.file(FIXTURES / "ioda-outages-events-empty.synthetic.json")
        )
        replay.add("/client/v4/radar/annotations/outages", Reply.file(signals_dir / RADAR_DOCS))
        replay.add("/client/v4/radar/traffic_anomalies", Reply.file(NO_ANOMALIES))
        clock.advance(timedelta(minutes=29))
        assert checker.run(sessions) == 0
        clock.advance(timedelta(minutes=1))
        assert checker.run(sessions) == 2
    assert verdicts(sessions, platform)["ooni"].verdict == "corroborated"
    assert verdicts(sessions, shutdown)["ioda"].verdict == "not_corroborated"
    # The docs example lists UA/US outages of 2022: outside Sudan's window, so no annotation.
    assert verdicts(sessions, shutdown)["radar"].verdict == "no_data"


def test_cache_serves_a_repeated_question(replay: ReplayServer, signals_dir: Path) -> None:
    from monitor.signals.http import ServiceHttp
    from monitor.signals.ooni import OoniClient, OoniQuery

    replay.add(AGG, Reply.file(signals_dir / TELEGRAM))
    clock = FrozenClock(datetime(2025, 3, 1, 20, tzinfo=UTC))
    with httpx.Client() as client:
        ooni = OoniClient(ServiceHttp("ooni", client, replay.url, clock, timedelta(hours=1)))
        query = OoniQuery("CN", ("telegram",), (), "Telegram")
        since, until = datetime(2025, 3, 1).date(), datetime(2025, 3, 2).date()
        first = ooni.counts(query, since, until)
        assert ooni.counts(query, since, until) == first
        assert replay.hits(AGG) == 1
        clock.advance(timedelta(hours=1, seconds=1))
        ooni.counts(query, since, until)
        assert replay.hits(AGG) == 2
    assert (first.blocked, first.usable) == (42, 42)
