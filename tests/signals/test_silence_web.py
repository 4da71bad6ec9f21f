"""The web shows an open silence signal: on its country's page and in the overview strip."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select

from monitor.clock import FrozenClock
from monitor.store.models import SilenceSignalRow
from monitor.web.build import WebSurface
from tests.support.webdata import add_feed
from tests.web.conftest import browser_client, make_token, web, web_db

__all__ = ["browser_client", "make_token", "web", "web_db"]  # fixtures, used by name


def test_an_open_signal_is_on_the_country_page_and_the_overview(
    web: WebSurface, browser_client: TestClient, clock: FrozenClock
) -> None:
    now = clock.now()
    with web.context.sessions.begin() as session:
        for n in range(4):  # all answering as far as the page's own count goes
            add_feed(session, f"mm-{n}", now, country="MM")
    page = browser_client.get("/countries/MM").text
    assert "Possible shutdown" not in page and "sources are silent" not in page
    assert "Possible shutdown" not in browser_client.get("/").text

    with web.context.sessions.begin() as session:
        session.add(
            SilenceSignalRow(
                country="MM",
                opened_at=now - timedelta(minutes=20),
                silent_since=now - timedelta(hours=1),
                feeds_total=4,
                feeds_silent=3,
                detail={},
            )
        )
    page = browser_client.get("/countries/MM").text
    assert "Possible shutdown: 3 of 4 of this country's sources silent since" in page
    overview = browser_client.get("/").text
    assert "Possible shutdown (sources silent)" in overview and 'href="/countries/MM"' in overview

    with web.context.sessions.begin() as session:
        for row in session.scalars(select(SilenceSignalRow)):
            row.closed_at = now
    assert "Possible shutdown" not in browser_client.get("/countries/MM").text
