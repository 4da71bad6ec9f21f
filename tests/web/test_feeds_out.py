"""Feeds out: Atom and JSON Feed of event revisions (and of items), read back by feedparser."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import feedparser
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from monitor.clock import FrozenClock
from monitor.store.models import AssessmentRow, EventRow, FeedRow, ItemRow
from monitor.web import feed_writers
from monitor.web.build import WebSurface
from tests.support.webdata import Measure, Report, add_measure

ATOM = "{http://www.w3.org/2005/Atom}"
HOSTILE = "Ban\x00 on <script>alert(1)</script> ]]> \x0b\x1fend"


def _vn_block() -> Measure:
    return Measure(
        country="VN", categories=["platform_block"], stage="proposed", targets=["platform:x"],
        reports=[
            Report("Vietnam drafts a rule to block X", stage="proposed", score=0.8),
            Report("Ministry confirms draft", stage="proposed", hours_after=1, feed="outlet-b"),
        ],
    )  # fmt: skip


def _pk_block_lifted() -> Measure:
    return Measure(
        country="PK", categories=["platform_block"], stage="lifted", targets=["platform:x"],
        reports=[
            Report("Pakistan blocks X", stage="enforced"),
            Report("X still blocked", stage="enforced", hours_after=2, feed="outlet-b"),
            Report("Pakistan restores X", stage="lifted", hours_after=50, feed="outlet-c"),
        ],
    )  # fmt: skip


def _pk_block() -> Measure:
    return Measure(
        country="PK", categories=["platform_block"], stage="enforced", targets=["platform:x"],
        reports=[Report("Pakistan blocks X", stage="enforced")],
    )  # fmt: skip


def _add_report(session: Session, event: EventRow, report: Report, when: datetime) -> None:
    """A later report joins an event and moves its stage, the way the recorder leaves it."""
    feed = session.query(FeedRow).filter_by(name=report.feed).one()
    item = ItemRow(
        feed_id=feed.id, guid=f"{event.id}-late", url=f"https://news.example/{event.id}/late",
        title=report.title, summary="", language="en", published=when, fetched_at=when,
        content_hash=f"{event.id:08d}{'late':0>56}", event_id=event.id,
    )  # fmt: skip
    session.add(item)
    session.flush()
    session.add(
        AssessmentRow(
            item_id=item.id, relevant=True, score=report.score, categories=event.categories,
            country=event.country, stage=report.stage, matched_terms=["restored"],
            evidence=["rule platform_block: restored"], model_version="test-model",
            created_at=when,
        )
    )  # fmt: skip
    event.stage, event.last_seen, event.stage_changed_at = report.stage, when, when
    event.item_count += 1


@pytest.fixture
def feed_token(make_token: Callable[..., str]) -> str:
    return make_token("feeds", name="reader-of-team-a")


def _get(client: TestClient, path: str, token: str, **params: str) -> Any:
    response = client.get(path, params={"token": token, **params})
    assert response.status_code == 200, response.text
    return response


def _atom(client: TestClient, token: str, **params: str) -> Any:
    response = _get(client, "/feeds/events.atom", token, **params)
    assert response.headers["content-type"].startswith("application/atom+xml")
    parsed = feedparser.parse(response.content)
    assert parsed.bozo == 0, parsed.get("bozo_exception")
    return parsed


def _json_feed(client: TestClient, token: str, **params: str) -> dict[str, Any]:
    response = _get(client, "/feeds/events.json", token, **params)
    assert response.headers["content-type"].startswith("application/feed+json")
    document: dict[str, Any] = response.json()
    return document


def test_both_feeds_parse_and_carry_one_entry_per_announced_revision(
    web: WebSurface, client: TestClient, clock: FrozenClock, feed_token: str
) -> None:
    with web.context.sessions.begin() as session:
        vn = add_measure(session, _vn_block(), clock.now() - timedelta(hours=5)).id
        pk = add_measure(session, _pk_block_lifted(), clock.now() - timedelta(days=3)).id

    atom = _atom(client, feed_token)
    assert atom.feed.title == "monitor · all events"
    assert atom.feed.id == "tag:127.0.0.1,2026:feed/events"
    assert [e.id for e in atom.entries] == [
        f"tag:127.0.0.1,2026:event/{vn}/rev/0",
        f"tag:127.0.0.1,2026:event/{pk}/rev/1",
        f"tag:127.0.0.1,2026:event/{pk}/rev/0",
    ]
    titles = [e.title for e in atom.entries]
    assert titles[0] == "[VN · platform_block · proposed] Vietnam drafts a rule to block X"
    assert titles[1] == "[PK · platform_block · enforced → lifted] Pakistan blocks X"
    lifted = atom.entries[1]
    assert lifted.link == f"http://127.0.0.1:8080/events/{pk}"
    assert lifted.updated == "2026-11-22T10:00:00Z"  # the report that lifted it, fetched then
    html = lifted.content[0].value
    for expected in ("enforced → lifted", "Pakistan (PK)", "platform block", "X (Twitter)",
                     "Pakistan restores X", "outlet-c", "https://news.example/"):  # fmt: skip
        assert expected in html, expected
    assert html.count("<li>") == 3  # the top three items of the event
    assert atom.feed.updated == atom.entries[0].updated
    self_link = next(link.href for link in atom.feed.links if link.rel == "self")
    assert self_link == "http://127.0.0.1:8080/feeds/events.atom"

    document = _json_feed(client, feed_token)
    assert document["version"] == "https://jsonfeed.org/version/1.1"
    assert document["title"] == "monitor · all events"
    assert document["feed_url"] == "http://127.0.0.1:8080/feeds/events.json"
    assert document["home_page_url"] == "http://127.0.0.1:8080/events"
    assert [i["id"] for i in document["items"]] == [e.id for e in atom.entries]
    for item in document["items"]:
        assert isinstance(item["id"], str) and item["id"]
        assert item["content_html"] and item["content_text"]
    assert "Stage: enforced → lifted" in document["items"][1]["content_text"]


def test_entry_ids_stay_and_a_stage_change_adds_an_entry(
    web: WebSurface, client: TestClient, clock: FrozenClock, feed_token: str
) -> None:
    start = clock.now() - timedelta(days=3)
    with web.context.sessions.begin() as session:
        event_id = add_measure(session, _pk_block(), start).id
    first = _atom(client, feed_token)
    again = _atom(client, feed_token)
    assert [(e.id, e.updated) for e in first.entries] == [(e.id, e.updated) for e in again.entries]
    assert len(first.entries) == 1

    with web.context.sessions.begin() as session:
        event = session.get_one(EventRow, event_id)
        lifted = Report("Pakistan restores X", stage="lifted", feed="outlet-a")
        _add_report(session, event, lifted, start + timedelta(hours=50))
    after = _atom(client, feed_token)
    assert [e.id for e in after.entries] == [
        f"tag:127.0.0.1,2026:event/{event_id}/rev/1",
        first.entries[0].id,
    ]
    assert after.entries[1].updated == first.entries[0].updated
    assert after.entries[0].title.startswith("[PK · platform_block · enforced → lifted]")


def test_the_events_filter_applies_and_is_named(
    web: WebSurface, client: TestClient, clock: FrozenClock, feed_token: str
) -> None:
    with web.context.sessions.begin() as session:
        add_measure(session, _vn_block(), clock.now() - timedelta(hours=5))
        add_measure(session, _pk_block_lifted(), clock.now() - timedelta(days=3))
        add_measure(session, Measure(
            country="VN", categories=["shutdown"], stage="enforced",
            reports=[Report("Mobile data cut in Hanoi")],
        ), clock.now() - timedelta(days=1))  # fmt: skip

    atom = _atom(client, feed_token, country="vn", category="platform_block")
    assert [e.title for e in atom.entries] == [
        "[VN · platform_block · proposed] Vietnam drafts a rule to block X"
    ]
    assert atom.feed.title == "monitor · VN · platform_block"
    self_link = next(link.href for link in atom.feed.links if link.rel == "self")
    assert self_link == (
        "http://127.0.0.1:8080/feeds/events.atom?country=VN&category=platform_block"
    )
    body = client.get("/feeds/events.atom", params={"token": feed_token, "country": "VN"}).text
    assert feed_token not in body
    document = _json_feed(client, feed_token, country="VN", limit="1")
    assert len(document["items"]) == 1
    assert document["items"][0]["title"].startswith("[VN · platform_block")
    assert document["feed_url"].endswith("/feeds/events.json?country=VN&limit=1")
    assert "token" not in document["feed_url"]
    typo = client.get("/feeds/events.atom", params={"token": feed_token, "country": "XX1"})
    assert typo.status_code == 400 and "country" in typo.text
    for bad in ("0", "many"):
        wrong = client.get("/feeds/events.json", params={"token": feed_token, "limit": bad})
        assert wrong.status_code == 400 and "limit" in wrong.text


def test_a_feeds_token_opens_feeds_only(
    web: WebSurface, client: TestClient, make_token: Callable[..., str], feed_token: str
) -> None:
    for path in ("/feeds/events.atom", "/feeds/events.json", "/feeds/items.atom"):
        assert client.get(path).status_code == 401, path
        assert client.get(path, params={"token": "mon_wrong"}).status_code == 401, path
        assert client.get(path, params={"token": feed_token}).status_code == 200, path
    # Not the API, neither in the URL nor as a header; not the pages.
    assert client.get("/api/v1/openapi.json", params={"token": feed_token}).status_code == 401
    bearer = {"Authorization": f"Bearer {feed_token}"}
    assert client.get("/api/v1/openapi.json", headers=bearer).status_code == 403
    page = client.get("/", params={"token": feed_token})
    assert page.status_code == 303 and page.headers["location"].startswith("/login")
    assert client.get("/", headers=bearer).status_code == 403
    # A read token works as a header, but is not taken from a URL (proxy logs keep URLs).
    read = make_token("read", name="analyst")
    assert client.get("/feeds/events.atom", params={"token": read}).status_code == 401
    ok = client.get("/feeds/events.atom", headers={"Authorization": f"Bearer {read}"})
    assert ok.status_code == 200


def test_a_repeat_fetch_gets_304_until_something_changes(
    web: WebSurface, client: TestClient, clock: FrozenClock, feed_token: str
) -> None:
    with web.context.sessions.begin() as session:
        add_measure(session, _pk_block(), clock.now() - timedelta(days=1))
    for path in ("/feeds/events.atom", "/feeds/events.json"):
        first = _get(client, path, feed_token)
        etag = first.headers["etag"]
        assert etag.startswith('"') and not etag.startswith("W/")
        assert first.headers["cache-control"] == "private, max-age=60"
        assert first.headers["last-modified"] == "Sun, 22 Nov 2026 08:00:00 GMT"
        params = {"token": feed_token}
        repeat = client.get(path, params=params, headers={"If-None-Match": etag})
        assert repeat.status_code == 304 and repeat.content == b""
        assert repeat.headers["etag"] == etag
        weak = client.get(path, params=params, headers={"If-None-Match": f'"x", W/{etag}'})
        assert weak.status_code == 304
        since = {"If-Modified-Since": first.headers["last-modified"]}
        assert client.get(path, params=params, headers=since).status_code == 304
        other = client.get(path, params=params, headers={"If-None-Match": '"other"', **since})
        assert other.status_code == 200  # If-None-Match decides when both are sent

    etag = _get(client, "/feeds/events.atom", feed_token).headers["etag"]
    with web.context.sessions.begin() as session:
        add_measure(session, _vn_block(), clock.now() - timedelta(hours=2))
    changed = client.get(
        "/feeds/events.atom", params={"token": feed_token}, headers={"If-None-Match": etag}
    )
    assert changed.status_code == 200 and changed.headers["etag"] != etag
    assert changed.headers["last-modified"] == "Mon, 23 Nov 2026 06:00:00 GMT"  # VN opened then


def test_a_hostile_title_stays_well_formed_and_escaped(
    web: WebSurface, client: TestClient, clock: FrozenClock, feed_token: str
) -> None:
    measure = Measure(
        country="IR", categories=["shutdown"], stage="enforced",
        reports=[Report(HOSTILE, summary="<img src=x onerror=alert(1)>\x08")],
    )  # fmt: skip
    with web.context.sessions.begin() as session:
        event = add_measure(session, measure, clock.now() - timedelta(hours=1))
        session.query(ItemRow).filter_by(event_id=event.id).update({"url": "javascript:alert(1)"})
    cleaned = "Ban on <script>alert(1)</script> ]]> end"
    for path in ("/feeds/events.atom", "/feeds/items.atom"):
        body = _get(client, path, feed_token).content
        root = ET.fromstring(body)  # well-formed XML 1.0
        entry = root.find(f"{ATOM}entry")
        assert entry is not None
        title = entry.findtext(f"{ATOM}title") or ""
        assert title.endswith(cleaned)
        content = entry.findtext(f"{ATOM}content") or ""
        # The content is HTML carried as text: the title inside it is escaped once more.
        assert "<script>" not in content and "&lt;script&gt;" in content
        assert "<img" not in content and "javascript:" not in content
        assert b"\x00" not in body and b"\x0b" not in body and b"]]>" not in body
        assert feedparser.parse(body).bozo == 0
    document = _json_feed(client, feed_token)
    item = document["items"][0]
    assert item["title"].endswith(cleaned)
    assert "<script>" not in item["content_html"] and cleaned in item["content_text"]
    assert "javascript:" not in json.dumps(document)


def test_the_items_feed_carries_flagged_items_newest_first(
    web: WebSurface, client: TestClient, clock: FrozenClock, feed_token: str
) -> None:
    with web.context.sessions.begin() as session:
        pk = add_measure(session, _pk_block_lifted(), clock.now() - timedelta(days=3))
        not_flagged = add_measure(session, Measure(
            country="VN", categories=["shutdown"], stage="enforced",
            reports=[Report("Football results", hours_after=60)],
        ), clock.now() - timedelta(days=3))  # fmt: skip
        session.query(AssessmentRow).filter(
            AssessmentRow.item_id.in_(
                session.query(ItemRow.id).filter_by(event_id=not_flagged.id).scalar_subquery()
            )
        ).update({"relevant": False}, synchronize_session=False)
        pk_id = pk.id

    response = _get(client, "/feeds/items.atom", feed_token, relevant="1")
    parsed = feedparser.parse(response.content)
    assert parsed.bozo == 0
    assert parsed.feed.title == "monitor · flagged items"
    assert [e.title for e in parsed.entries] == [
        "[PK · platform_block · lifted · 0.90] Pakistan restores X",
        "[PK · platform_block · enforced · 0.90] X still blocked",
        "[PK · platform_block · enforced · 0.90] Pakistan blocks X",
    ]
    first = parsed.entries[0]
    assert first.link == f"https://news.example/{pk_id}/2"
    assert f"http://127.0.0.1:8080/events/{pk_id}" in first.content[0].value
    assert "rule platform_block: blocked" in first.content[0].value
    all_items = _get(client, "/feeds/items.atom", feed_token, relevant="0")
    everything = feedparser.parse(all_items.content)
    assert len(everything.entries) == 4
    assert everything.entries[0].title.endswith("Football results")
    one = _get(client, "/feeds/items.json", feed_token, limit="1").json()
    assert len(one["items"]) == 1 and one["feed_url"].endswith("items.json?relevant=1&limit=1")
    wrong = client.get("/feeds/items.atom", params={"token": feed_token, "relevant": "yes"})
    assert wrong.status_code == 400 and "relevant" in wrong.text


def test_an_empty_feed_is_valid(client: TestClient, feed_token: str) -> None:
    response = _get(client, "/feeds/events.atom", feed_token, country="NZ")
    assert feedparser.parse(response.content).bozo == 0
    assert "last-modified" not in response.headers
    assert _json_feed(client, feed_token, country="NZ")["items"] == []


def test_a_relative_since_keeps_the_feed_and_its_etag_stable(
    web: WebSurface, client: TestClient, clock: FrozenClock, feed_token: str
) -> None:
    with web.context.sessions.begin() as session:
        add_measure(session, _vn_block(), clock.now() - timedelta(hours=5))
        add_measure(session, _pk_block(), clock.now() - timedelta(days=20))
    first = _get(client, "/feeds/events.atom", feed_token, since="7d")
    clock.advance(timedelta(minutes=3))
    again = _get(client, "/feeds/events.atom", feed_token, since="7d")
    assert again.headers["etag"] == first.headers["etag"]
    parsed = feedparser.parse(again.content)
    assert parsed.feed.title == "monitor · since 7d"
    assert [e.title[:4] for e in parsed.entries] == ["[VN "]
    self_link = next(link.href for link in parsed.feed.links if link.rel == "self")
    assert self_link.endswith("/feeds/events.atom?since=7d")


def test_ids_and_links_use_the_configured_address(
    web: WebSurface, client: TestClient, clock: FrozenClock, feed_token: str
) -> None:
    web.context.base_url = "https://monitor.example.org:8443"
    with web.context.sessions.begin() as session:
        event_id = add_measure(session, _pk_block(), clock.now()).id
    document = _json_feed(client, feed_token)
    assert document["items"][0]["id"] == f"tag:monitor.example.org,2026:event/{event_id}/rev/0"
    assert document["items"][0]["url"] == f"https://monitor.example.org:8443/events/{event_id}"
    assert document["feed_url"] == "https://monitor.example.org:8443/feeds/events.json"


@pytest.mark.parametrize(
    ("raw", "cleaned"),
    [
        ("a\x00b\x08c\x1fd", "abcd"),
        ("tab\tnew\nline\r", "tab\tnew\nline\r"),
        ("C1 \x85\x9f and \ufffe\uffff", "C1  and "),
        ("Tiếng Việt, اردو, 😀", "Tiếng Việt, اردو, 😀"),
        (None, ""),
    ],
)
def test_clean_keeps_what_xml_allows(raw: str | None, cleaned: str) -> None:
    assert feed_writers.clean(raw) == cleaned


def test_only_web_links_become_links() -> None:
    assert feed_writers.web_url("https://a.example/x?y=1") == "https://a.example/x?y=1"
    for bad in ("javascript:alert(1)", " JavaScript:alert(1)", "data:text/html,x", "", None):
        assert feed_writers.web_url(bad) is None, bad
