"""The events JSON API: shapes, cursor pagination with a Link header, scopes, 404s."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from monitor.clock import FrozenClock
from monitor.store.models import FeedbackRow
from monitor.web.build import WebSurface
from tests.support.webdata import Measure, Report, add_measure

Headers = dict[str, str]


@pytest.fixture
def read(make_token: Callable[..., str]) -> Headers:
    return {"Authorization": f"Bearer {make_token('read', name='script')}"}


@pytest.fixture
def write(make_token: Callable[..., str]) -> Headers:
    return {"Authorization": f"Bearer {make_token('read', 'write', name='bot')}"}


@pytest.fixture
def event_ids(web: WebSurface, clock: FrozenClock) -> list[int]:
    """Seven PK events an hour apart (newest first in the list), the first with an alert."""
    ids = []
    with web.context.sessions.begin() as session:
        for n in range(7):
            reports = [
                Report(f"Block {n}", summary="X was blocked today.", evidence=("rule b",)),
                Report(f"Block {n} lifted", stage="lifted", hours_after=0.5, feed="outlet-b"),
            ]
            alerts = [("team", "new", "sent")] if n == 0 else []
            measure = Measure("PK", ["platform_block"], "lifted", reports, alerts=alerts)
            event = add_measure(session, measure, clock.now() - timedelta(hours=n + 1))
            ids.append(event.id)
    return ids


def test_events_page_by_cursor_with_a_link_header(
    client: TestClient, read: Headers, event_ids: list[int]
) -> None:
    seen: list[int] = []
    url: str | None = "/api/v1/events?country=PK&limit=3"
    pages = 0
    while url is not None:
        response = client.get(url, headers=read)
        assert response.status_code == 200
        body = response.json()
        seen += [item["id"] for item in body["items"]]
        pages += 1
        if body["next"] is None:
            assert "link" not in response.headers
            url = None
        else:
            link = response.headers["link"]
            assert link.endswith('>; rel="next"') and f"cursor={body['next']}" in link
            url = link[1 : link.index(">")]
    assert pages == 3 and seen == event_ids  # newest first, nothing twice
    first = client.get("/api/v1/events?limit=1", headers=read).json()["items"][0]
    assert set(first) >= {"id", "title", "country", "categories", "stage", "status", "sources"}
    assert first["sources"] == 2 and first["stage"] == "lifted"


def test_events_limits_and_wrong_parameters(
    client: TestClient, read: Headers, event_ids: list[int]
) -> None:
    assert len(client.get("/api/v1/events?limit=500", headers=read).json()["items"]) == 7
    assert client.get("/api/v1/events?limit=0", headers=read).status_code == 400
    wrong = client.get("/api/v1/events?stage=banned", headers=read)
    assert wrong.status_code == 400 and wrong.json()["detail"].startswith("stage")
    assert client.get("/api/v1/events?cursor=nonsense", headers=read).status_code == 400


def test_event_detail_has_items_reasons_timeline_and_alerts(
    client: TestClient, read: Headers, event_ids: list[int]
) -> None:
    body = client.get(f"/api/v1/events/{event_ids[0]}", headers=read).json()
    assert body["event"]["title"] == "Block 0"
    assert [step["stage"] for step in body["timeline"]] == ["enforced", "lifted"]
    first = body["items"][0]
    assert first["reasons"] == ["rule b"] and first["matched_terms"] == ["blocked"]
    assert {"text": "blocked", "marked": True} in first["quote"]
    assert body["item_total"] == 2
    assert [(a["route"], a["status"]) for a in body["alerts"]] == [("team", "sent")]
    assert body["corroboration"][0]["url"] == "https://explorer.ooni.org/country/PK"
    missing = client.get("/api/v1/events/9999", headers=read)
    assert missing.status_code == 404 and missing.json() == {"detail": "no event with id 9999"}


def test_feedback_needs_write_and_records_verdicts(
    web: WebSurface, client: TestClient, read: Headers, write: Headers, event_ids: list[int]
) -> None:
    url = f"/api/v1/events/{event_ids[0]}/feedback"
    assert client.post(url, json={"action": "dismiss"}, headers=read).status_code == 403
    # Without any credentials: a token is needed.
    assert client.post(url, json={"action": "dismiss"}).status_code == 401
    answer = client.post(url, json={"action": "dismiss"}, headers=write)
    assert answer.status_code == 200 and answer.json()["status"] == "dismissed"
    with web.context.sessions() as session:
        assert [v.relevant for v in session.scalars(select(FeedbackRow))] == [False, False]
    listed = client.get("/api/v1/events", headers=read).json()["items"]
    assert event_ids[0] not in [item["id"] for item in listed]

    corrected = client.post(
        f"/api/v1/events/{event_ids[1]}/feedback",
        json={"action": "correct", "categories": ["shutdown"], "stage": "enforced",
              "country": None},
        headers=write,
    )  # fmt: skip
    assert corrected.status_code == 200, corrected.text
    assert corrected.json()["categories"] == ["shutdown"] and corrected.json()["country"] is None
    incomplete = client.post(
        f"/api/v1/events/{event_ids[1]}/feedback", json={"action": "correct"}, headers=write
    )
    assert incomplete.status_code == 422 and "categories" in incomplete.json()["detail"]
    unknown = client.post("/api/v1/events/9999/feedback", json={"action": "confirm"},
                          headers=write)  # fmt: skip
    assert unknown.status_code == 404


def test_countries_country_and_stats(
    client: TestClient, read: Headers, event_ids: list[int], clock: FrozenClock
) -> None:
    [pakistan] = client.get("/api/v1/countries", headers=read).json()["items"]
    assert pakistan == {
        "code": "PK", "events": 7, "open_events": 0, "latest_stage": "lifted",
        "last_change": (clock.now() - timedelta(minutes=30)).isoformat().replace("+00:00", "Z"),
    }  # fmt: skip
    country = client.get("/api/v1/countries/pk", headers=read).json()
    assert country["code"] == "PK" and len(country["events"]) == 7
    assert {feed["name"] for feed in country["feeds"]} == {"outlet-a", "outlet-b"}
    missing = client.get("/api/v1/countries/ZZ", headers=read)
    assert missing.status_code == 404 and "ZZ" in missing.json()["detail"]

    stats = client.get("/api/v1/stats?since=2d", headers=read).json()
    cell = {(c["category"], c["stage"]): c["count"] for c in stats["by_category_stage"]}
    assert cell[("platform_block", "lifted")] == 7 and cell[("shutdown", "lifted")] == 0
    assert sum(day["new_events"] for day in stats["per_day"]) == 7
    assert sum(day["stage_changes"] for day in stats["per_day"]) == 7
    assert len(stats["per_day"]) == 3
    assert client.get("/api/v1/stats?since=soon", headers=read).status_code == 400


def test_the_openapi_document_describes_the_event_routes(client: TestClient, read: Headers) -> None:
    document = client.get("/api/v1/openapi.json", headers=read).json()
    paths = document["paths"]
    for path in ("/api/v1/events", "/api/v1/events/{event_id}", "/api/v1/stats",
                 "/api/v1/events/{event_id}/feedback", "/api/v1/countries/{code}"):  # fmt: skip
        assert path in paths, path
    parameters = {p["name"] for p in paths["/api/v1/events"]["get"]["parameters"]}
    assert {"country", "category", "stage", "since", "cursor", "limit"} <= parameters
    assert "EventsOut" in document["components"]["schemas"]
