"""The event pages render the stored events, filter and page them, and the analysts'
actions write the verdicts `monitor train` learns from."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from monitor.clock import FrozenClock
from monitor.daemon.status import DaemonState, ReloadStatus
from monitor.store.models import ApiTokenRow, EventRow, FeedbackRow, ItemRow
from monitor.web.build import WebSurface
from tests.support.webdata import Measure, Report, add_feed, add_measure
from tests.web.conftest import BASE

BLOCK = Measure(
    country="PK",
    categories=["platform_block"],
    stage="lifted",
    targets=["platform:x"],
    reports=[
        Report(
            "Pakistan blocks X",
            summary="Traffic fell at noon. The regulator said X was blocked nationwide.",
            matched_terms=("blocked",),
            evidence=("rule platform_block: blocked", "country: Pakistan"),
        ),
        Report("X still blocked", hours_after=2, feed="outlet-b"),
        Report("Pakistan restores X", stage="lifted", hours_after=50, feed="outlet-c"),
    ],
    alerts=[("team-signal", "new", "sent"), ("team-mail", "update", "dead")],
)
PROPOSAL = Measure(
    "VN", ["shutdown", "throttling"], "proposed",
    [Report("Vietnam drafts <script>alert(1)</script> law", stage="proposed")],
)  # fmt: skip


@pytest.fixture
def seeded(web: WebSurface, clock: FrozenClock) -> dict[str, int]:
    with web.context.sessions.begin() as session:
        block = add_measure(session, BLOCK, clock.now() - timedelta(days=3))
        proposal = add_measure(session, PROPOSAL, clock.now() - timedelta(hours=5))
        old = Measure("IR", ["shutdown"], "enforced", [Report("Iran cuts mobile data")])
        iran = add_measure(session, old, clock.now() - timedelta(days=40))
        return {"block": block.id, "proposal": proposal.id, "iran": iran.id}


@pytest.fixture
def reader_client(web: WebSurface, make_token: Callable[..., str]) -> Iterator[TestClient]:
    token = make_token("read", name="read-only")
    with TestClient(
        web.app, base_url=BASE, follow_redirects=False, headers={"Sec-Fetch-Site": "same-origin"}
    ) as test_client:
        assert test_client.get(f"/login?token={token}").status_code == 303
        yield test_client


def _event_titles(html: str) -> list[str]:
    return re.findall(r'<td><a href="/events/\d+">([^<]+)</a></td>', html)


def test_overview_shows_new_events_moves_matrix_countries_and_the_system(
    web: WebSurface, browser_client: TestClient, seeded: dict[str, int], clock: FrozenClock
) -> None:
    with web.context.sessions.begin() as session:
        add_feed(session, "broken-outlet", clock.now(), failures=4, error="timeout")
    reload = ReloadStatus(at=clock.now() - timedelta(minutes=5), ok=False, message="line 3")
    web.context.daemon_state = lambda: DaemonState(True, clock.now(), 10.0, reload=reload)
    html = browser_client.get("/").text
    day = html[html.index("In the last 24 hours") : html.index("In the rest of the last 7 days")]
    assert "Vietnam drafts &lt;script&gt;" in day and "<script>alert" not in html
    new, moved = day.split("Stage changes")
    assert "Vietnam drafts" in new and "Pakistan blocks X" not in new
    assert "Pakistan blocks X" in moved and "stage moved 22 h ago" in moved  # PK lifted
    week = html[html.index("In the rest of the last 7 days") : html.index('id="matrix"')]
    # The week's cards leave out the day's; Iran is 40 days old.
    assert "New events (1)" in week and "Pakistan blocks X" in week
    assert "Vietnam" not in week and "Iran" not in week and "No stage changes." in week
    assert "Feeds failing" in html and "1 of" in html
    assert "1 dead" in html and "rejected" in html
    assert '<svg class="chart"' in html and "<title>Events by category" in html
    # The matrix table: one platform-block event, lifted.
    assert re.search(r"category=platform_block&amp;stage=lifted&amp;since=30d\">1<", html)
    assert '<a href="/countries/PK">Pakistan (PK)</a>' in html
    assert '<svg class="spark"' in html


def test_events_filters_and_hides_dismissed(
    web: WebSurface, browser_client: TestClient, seeded: dict[str, int]
) -> None:
    everything = _event_titles(browser_client.get("/events").text)
    assert len(everything) == 3
    assert _event_titles(browser_client.get("/events?country=pk").text) == ["Pakistan blocks X"]
    assert _event_titles(browser_client.get("/events?min_sources=3").text) == ["Pakistan blocks X"]
    assert _event_titles(browser_client.get("/events?category=throttling").text) == [
        "Vietnam drafts &lt;script&gt;alert(1)&lt;/script&gt; law"
    ]
    assert _event_titles(browser_client.get("/events?since=7d&stage=lifted").text) == [
        "Pakistan blocks X"
    ]
    assert _event_titles(browser_client.get("/events?q=IRAN").text) == ["Iran cuts mobile data"]
    bad = browser_client.get("/events?stage=banned")
    assert bad.status_code == 400 and "stage" in bad.text


def test_the_view_links_keep_the_filter(browser_client: TestClient, seeded: dict[str, int]) -> None:
    html = browser_client.get("/events?country=PK&since=7d").text
    assert 'href="/feeds/events.atom?country=PK&amp;since=7d"' in html
    assert 'href="/feeds/events.json?country=PK&amp;since=7d"' in html
    assert 'href="/events.csv?country=PK&amp;since=7d"' in html


def test_events_page_two_follows_the_cursor(
    web: WebSurface, browser_client: TestClient, clock: FrozenClock
) -> None:
    with web.context.sessions.begin() as session:
        for n in range(55):
            measure = Measure("VN", ["platform_block"], "enforced", [Report(f"Report {n:02d}")])
            add_measure(session, measure, clock.now() - timedelta(hours=n))
    first = browser_client.get("/events?country=VN").text
    titles = _event_titles(first)
    assert len(titles) == 50 and titles[0] == "Report 00"
    next_url = re.search(r'<a href="([^"]+)" rel="next">', first)
    assert next_url is not None
    second = browser_client.get(next_url.group(1).replace("&amp;", "&")).text
    assert _event_titles(second) == [f"Report {n}" for n in range(50, 55)]
    assert 'rel="next"' not in second


def test_event_detail_shows_timeline_evidence_reasons_alerts_and_links(
    browser_client: TestClient, seeded: dict[str, int]
) -> None:
    html = browser_client.get(f"/events/{seeded['block']}").text
    assert "<h1>Pakistan blocks X</h1>" in html
    timeline = html[html.index('class="timeline"') : html.index('id="evidence"')]
    assert timeline.index("enforced") < timeline.index("lifted")
    assert "Pakistan restores X" in timeline and "outlet-c" in timeline
    assert "The regulator said X was <mark>blocked</mark> nationwide." in html
    assert "rule platform_block: blocked" in html and "country: Pakistan" in html
    assert "Model test-model" in html and "outlet-b" in html
    assert "team-signal" in html and "team-mail" in html and ">dead<" in html
    assert 'href="https://explorer.ooni.org/country/PK"' in html
    assert 'href="https://ioda.inetintel.cc.gatech.edu/country/PK"' in html
    assert 'href="https://radar.cloudflare.com/pk"' in html
    assert 'action="/events/{}/dismiss"'.format(seeded["block"]) in html


def test_an_unknown_event_is_a_404_page(browser_client: TestClient) -> None:
    response = browser_client.get("/events/999")
    assert response.status_code == 404 and "No event 999" in response.text


def _verdicts(web: WebSurface, event_id: int) -> list[FeedbackRow]:
    with web.context.sessions() as session:
        items = select(ItemRow.id).where(ItemRow.event_id == event_id)
        return list(session.scalars(select(FeedbackRow).where(FeedbackRow.item_id.in_(items))))


def test_not_relevant_teaches_and_hides_the_event(
    web: WebSurface, browser_client: TestClient, seeded: dict[str, int]
) -> None:
    event_id = seeded["block"]
    response = browser_client.post(f"/events/{event_id}/dismiss")
    assert response.status_code == 303
    assert response.headers["location"] == f"/events/{event_id}?done=dismissed"
    verdicts = _verdicts(web, event_id)
    assert len(verdicts) == 3 and not any(v.relevant for v in verdicts)
    assert "Pakistan blocks X" not in _event_titles(browser_client.get("/events").text)
    dismissed = browser_client.get("/events?status=dismissed").text
    assert _event_titles(dismissed) == ["Pakistan blocks X"]
    assert "Marked not relevant" in browser_client.get(response.headers["location"]).text


def test_confirm_records_each_item_with_its_own_stage(
    web: WebSurface, browser_client: TestClient, seeded: dict[str, int]
) -> None:
    event_id = seeded["block"]
    assert browser_client.post(f"/events/{event_id}/confirm").status_code == 303
    verdicts = _verdicts(web, event_id)
    assert {(v.relevant, v.stage, v.country) for v in verdicts} == {
        (True, "enforced", "PK"),
        (True, "lifted", "PK"),
    }
    with web.context.sessions() as session:
        assert session.get(EventRow, event_id).status == "confirmed"  # type: ignore[union-attr]


def test_correct_writes_the_corrected_labels(
    web: WebSurface, browser_client: TestClient, seeded: dict[str, int]
) -> None:
    event_id = seeded["proposal"]
    response = browser_client.post(
        f"/events/{event_id}/correct",
        data={"category": ["shutdown", "vpn_restriction"], "stage": "enacted", "country": "la"},
    )
    assert response.status_code == 303
    [verdict] = _verdicts(web, event_id)
    assert verdict.relevant and verdict.categories == ["shutdown", "vpn_restriction"]
    assert (verdict.stage, verdict.country) == ("enacted", "LA")
    with web.context.sessions() as session:
        event = session.get(EventRow, event_id)
        assert event is not None
        assert (event.country, event.stage, event.status) == ("LA", "enacted", "confirmed")
        assert event.categories == ["shutdown", "vpn_restriction"]
    html = browser_client.get(f"/events/{event_id}").text
    assert "Laos (LA)" in html or "(LA)" in html


def test_a_wrong_correction_is_shown_not_saved(
    web: WebSurface, browser_client: TestClient, seeded: dict[str, int]
) -> None:
    event_id = seeded["proposal"]
    response = browser_client.post(
        f"/events/{event_id}/correct", data={"stage": "enacted", "country": "Laos"}
    )
    assert response.status_code == 400
    assert "Not saved: categories: choose at least one" in response.text
    response = browser_client.post(
        f"/events/{event_id}/correct",
        data={"category": ["shutdown"], "stage": "enacted", "country": "Laos"},
    )
    assert response.status_code == 400 and "country" in response.text
    assert _verdicts(web, event_id) == []


def test_a_read_only_session_cannot_act(
    web: WebSurface, reader_client: TestClient, seeded: dict[str, int]
) -> None:
    event_id = seeded["block"]
    html = reader_client.get(f"/events/{event_id}").text
    assert "/dismiss" not in html  # no buttons it could not use
    for action in ("confirm", "dismiss", "correct"):
        assert reader_client.post(f"/events/{event_id}/{action}").status_code == 403
    assert reader_client.post("/events/subscribe", data={"name": "x"}).status_code == 403
    assert _verdicts(web, event_id) == []


def test_subscribing_makes_a_feeds_token_shown_once(
    web: WebSurface, browser_client: TestClient, seeded: dict[str, int]
) -> None:
    page = browser_client.get("/events?country=PK&since=7d").text
    assert '<input type="hidden" name="country" value="PK">' in page
    response = browser_client.post(
        "/events/subscribe", data={"name": "desk reader", "country": "PK", "since": "7d"}
    )
    assert response.status_code == 200
    urls = re.findall(r"<code>([^<]+)</code>", response.text)
    assert len(urls) == 2
    assert urls[0].startswith(f"{BASE}/feeds/events.atom?country=PK&amp;since=7d&amp;token=mon_")
    assert "/feeds/events.json?" in urls[1]
    with web.context.sessions() as session:
        row = session.scalar(select(ApiTokenRow).where(ApiTokenRow.name == "feed: desk reader"))
        assert row is not None and row.scopes == "feeds"


def test_csv_exports_the_filtered_view(browser_client: TestClient, seeded: dict[str, int]) -> None:
    response = browser_client.get("/events.csv?category=shutdown")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [r["country"] for r in rows] == ["VN", "IR"]
    assert rows[0]["categories"] == "shutdown;throttling" and rows[0]["stage"] == "proposed"


def test_a_formula_headline_is_defused_in_csv(
    web: WebSurface, browser_client: TestClient, clock: FrozenClock
) -> None:
    with web.context.sessions.begin() as session:
        measure = Measure("VN", ["shutdown"], "enforced", [Report("=HYPERLINK(1)")])
        add_measure(session, measure, clock.now())
    rows = list(csv.DictReader(io.StringIO(browser_client.get("/events.csv").text)))
    assert rows[0]["title"] == "'=HYPERLINK(1)"


def test_countries_list_their_open_events_and_latest_stage(
    browser_client: TestClient, seeded: dict[str, int]
) -> None:
    html = browser_client.get("/countries").text
    rows = re.findall(r'<a href="/countries/(\w\w)">', html)
    assert rows == ["VN", "PK", "IR"]  # most recently active first
    pakistan = html[html.index("/countries/PK") : html.index("/countries/IR")]
    assert '<td class="num">0</td><td class="num">1</td>' in pakistan  # lifted: not open
    assert "stage lifted" in pakistan


def test_a_country_page_draws_lanes_and_warns_of_silent_sources(
    web: WebSurface, browser_client: TestClient, seeded: dict[str, int], clock: FrozenClock
) -> None:
    html = browser_client.get("/countries/pk").text
    assert "<h1>Pakistan (PK)</h1>" in html
    assert "<title>PK: events by category" in html
    assert 'class="svg-stage-enforced"' in html and 'class="svg-stage-lifted"' in html
    assert "Pakistan blocks X — lifted from" in html
    # The seeded outlets last succeeded three days ago: silent at a 15 min interval.
    assert "Most of this country's sources are silent since" in html
    assert "outlet-c" in html and "badge bad" in html
    with web.context.sessions.begin() as session:
        add_feed(session, "fresh-1", clock.now(), country="PK")
        add_feed(session, "fresh-2", clock.now(), country="PK")
        add_feed(session, "fresh-3", clock.now(), country="PK")
    assert "sources are silent" not in browser_client.get("/countries/PK").text
