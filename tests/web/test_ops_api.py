"""The operators' JSON API: shapes, cursor pagination with a Link header, scopes on writes."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select

from monitor.clock import FrozenClock
from monitor.store.models import AlertRow, FeedbackRow, FeedRow
from monitor.web.build import WebSurface
from tests.support.webdata import Measure, Report, add_feed, add_measure
from tests.web.test_ops_pages import add_item


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_items_page_through_with_a_cursor_and_a_link_header(
    web: WebSurface, client: TestClient, make_token: Callable[..., str], clock: FrozenClock
) -> None:
    now = clock.now()
    with web.context.sessions.begin() as session:
        feed = add_feed(session, "outlet-a", now)
        for n in range(5):
            add_item(session, feed, f"near {n}", 0.7, now - timedelta(hours=n))
    reader = _auth(make_token("read"))
    first = client.get("/api/v1/items?limit=2", headers=reader)
    assert first.status_code == 200, first.text
    body = first.json()
    assert [i["title"] for i in body["items"]] == ["near 0", "near 1"]
    assert body["threshold"] == 0.8 and body["next"]
    assert 'rel="next"' in first.headers["link"]
    seen = [i["title"] for i in body["items"]]
    while body["next"]:
        body = client.get(f"/api/v1/items?limit=2&cursor={body['next']}", headers=reader).json()
        seen += [i["title"] for i in body["items"]]
    assert seen == [f"near {n}" for n in range(5)]
    item = client.get("/api/v1/items?limit=1", headers=reader).json()["items"][0]
    assert set(item) >= {"score", "categories", "country", "stage", "matched_terms", "verdict"}
    assert client.get("/api/v1/items?limit=0", headers=reader).status_code == 400
    assert client.get("/api/v1/items?cursor=zz", headers=reader).status_code == 400
    assert len(client.get("/api/v1/items?limit=500", headers=reader).json()["items"]) == 5


def test_an_item_comes_with_its_assessment_and_takes_a_verdict(
    web: WebSurface, client: TestClient, make_token: Callable[..., str], clock: FrozenClock
) -> None:
    now = clock.now()
    with web.context.sessions.begin() as session:
        item_id = add_item(session, add_feed(session, "a", now), "near", 0.7, now).id
    reader, writer = _auth(make_token("read")), _auth(make_token("read", "write", name="w"))
    detail = client.get(f"/api/v1/items/{item_id}", headers=reader).json()
    assert detail["assessment"] == {
        "relevant": False, "score": 0.7, "categories": ["platform_block"], "country": "PK",
        "stage": "enforced", "evidence": ["rule platform_block: blocked"],
        "matched_terms": ["blocked"], "model_version": "test-model",
    }  # fmt: skip
    path = f"/api/v1/items/{item_id}/feedback"
    assert client.post(path, json={"relevant": True}, headers=reader).status_code == 403
    assert client.post(path, json={"relevant": False}, headers=writer).status_code == 201
    with web.context.sessions() as session:
        assert [r.relevant for r in session.scalars(select(FeedbackRow))] == [False]
    verdict = client.get(f"/api/v1/items/{item_id}", headers=reader).json()["verdict"]
    assert verdict["relevant"] is False
    assert client.get("/api/v1/items/999", headers=reader).status_code == 404


def test_feeds_their_polls_and_the_write_actions(
    web: WebSurface, client: TestClient, make_token: Callable[..., str], clock: FrozenClock
) -> None:
    now = clock.now()
    with web.context.sessions.begin() as session:
        add_feed(session, "fine", now)
        broken = add_feed(session, "broken", now, failures=2, error="HTTP 500", error_kind="http")
        broken.next_poll_at = now + timedelta(hours=2)
        broken_id = broken.id
    reader, writer = _auth(make_token("read")), _auth(make_token("read", "write", name="w"))
    listing = client.get("/api/v1/feeds?state=failing", headers=reader).json()
    assert [f["name"] for f in listing["items"]] == ["broken"]
    assert listing["counts"]["failing"] == 1 and listing["next"] is None
    feed = client.get(f"/api/v1/feeds/{broken_id}", headers=reader).json()
    assert feed["state"] == "failing" and feed["last_error"] == "HTTP 500"
    fetches = client.get(f"/api/v1/feeds/{broken_id}/fetches", headers=reader).json()
    assert [f["outcome"] for f in fetches["items"]] == ["error"] and fetches["next"] is None
    assert client.post(f"/api/v1/feeds/{broken_id}/refresh", headers=reader).status_code == 403
    assert client.post(f"/api/v1/feeds/{broken_id}/refresh", headers=writer).json()["ok"]
    assert client.post(f"/api/v1/feeds/{broken_id}/reset-errors", headers=writer).status_code == 200
    with web.context.sessions() as session:
        row = session.get(FeedRow, broken_id)
        assert row is not None and row.next_poll_at == now and row.consecutive_failures == 0
    assert client.post("/api/v1/feeds/999/refresh", headers=writer).status_code == 404


def test_alerts_by_status_and_a_retry(
    web: WebSurface, client: TestClient, make_token: Callable[..., str], clock: FrozenClock
) -> None:
    now = clock.now()
    measure = Measure(
        country="PK", categories=["platform_block"], stage="enforced",
        reports=[Report("Pakistan blocks X")],
        alerts=[("ops", "new", "dead"), ("chat", "new", "sent")],
    )  # fmt: skip
    with web.context.sessions.begin() as session:
        add_measure(session, measure, now - timedelta(hours=3))
        dead_id = session.scalars(select(AlertRow.id).where(AlertRow.status == "dead")).one()
    reader, writer = _auth(make_token("read")), _auth(make_token("read", "write", name="w"))
    dead = client.get("/api/v1/alerts?status=dead", headers=reader).json()
    assert [a["id"] for a in dead["items"]] == [dead_id]
    assert dead["counts"] == {"pending": 0, "sending": 0, "digest": 0, "sent": 1, "dead": 1}
    assert dead["items"][0]["event_title"] == "Pakistan blocks X"
    assert client.get("/api/v1/alerts?status=lost", headers=reader).status_code == 400
    assert client.get("/api/v1/alerts?route=chat", headers=reader).json()["counts"]["sent"] == 1
    retried = client.post(f"/api/v1/alerts/{dead_id}/retry", headers=writer).json()
    assert retried == {"ok": True, "changed": 1}
    status = client.get("/api/v1/status", headers=reader).json()
    assert status["outbox"]["pending"] == 1 and status["outbox"]["dead"] == 0
    assert status["feeds_failing"] == 0 and status["scheduler_running"] is None
    clock.advance(timedelta(minutes=5))
    assert client.get("/api/v1/status", headers=reader).json()["uptime_s"] == 300.0
    assert client.get("/api/v1/version", headers=reader).json() == {"version": web.context.version}


def test_the_openapi_document_describes_the_operator_routes(
    client: TestClient, make_token: Callable[..., str]
) -> None:
    document = client.get("/api/v1/openapi.json", headers=_auth(make_token("read"))).json()
    for path in ("/api/v1/items", "/api/v1/feeds/{feed_id}/fetches", "/api/v1/status"):
        assert path in document["paths"], path
    assert "FeedOut" in document["components"]["schemas"]
