"""Verdicts shown where people look: the web event page's Measurements section."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient

from monitor.clock import FrozenClock
from monitor.store.models import CorroborationRow
from monitor.web.build import WebSurface
from tests.support.webdata import Measure, Report, add_measure
from tests.web.conftest import browser_client, make_token, web, web_db  # noqa: F401 - fixtures


def test_event_page_shows_each_services_latest_verdict(
    web: WebSurface,  # noqa: F811
    browser_client: TestClient,  # noqa: F811
    clock: FrozenClock,
) -> None:
    now = clock.now()
    with web.context.sessions.begin() as session:
        event = add_measure(
            session,
            Measure("IR", ["platform_block"], "enforced", [Report("Iran blocks Telegram")]),
            now - timedelta(hours=2),
        )
        for checked, verdict, summary in [
            (now - timedelta(hours=2), "unavailable", "service unreachable (HTTP 429)"),
            (now - timedelta(hours=1), "corroborated", "71 of 71 Telegram measurements <b>"),
        ]:
            session.add(
                CorroborationRow(
                    event_id=event.id, service="ooni", checked_at=checked, verdict=verdict,
                    before_report=True, summary=summary, figures={},
                    link="https://explorer.ooni.org/chart/mat?probe_cc=IR",
                    attribution="OONI (ooni.org), data CC BY-NC-SA 4.0",
                    next_check_at=now + timedelta(hours=4),
                )
            )  # fmt: skip
    html = browser_client.get(f"/events/{event.id}").text
    section = html[html.index('id="measurements"') : html.index('id="corroborate"')]
    assert "OONI" in section and "corroborated (already before this report)" in section
    assert "71 of 71 Telegram measurements &lt;b&gt;" in section  # escaped
    assert "HTTP 429" not in section  # only the latest verdict
    assert 'href="https://explorer.ooni.org/chart/mat?probe_cc=IR"' in section
    assert "CC BY-NC-SA 4.0" in section
