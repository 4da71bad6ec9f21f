"""The operators' pages: triage with verdicts, source health with its states, the outbox with
retries, the system page with the reload result and the config file's errors."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from monitor.clock import FrozenClock
from monitor.daemon.status import DaemonState, JobInfo, ReloadStatus
from monitor.store.models import AlertRow, AssessmentRow, FeedbackRow, FeedRow, ItemRow
from monitor.web.build import WebSurface
from monitor.web.source_queries import FeedHealth, feed_state
from tests.support.webdata import Measure, Report, add_feed, add_measure

# The packaged model's threshold is 0.80; the triage band is 0.65..0.95.


def add_item(
    session: Session,
    feed: FeedRow,
    title: str,
    score: float,
    at: datetime,
    *,
    relevant: bool | None = None,
    event_id: int | None = None,
    language: str = "en",
) -> ItemRow:
    """One collected item and its assessment (relevant when at or over 0.8 unless told)."""
    item = ItemRow(
        feed_id=feed.id, guid=f"{feed.id}-{title}", url=f"https://news.example/{title}",
        title=title, summary="", language=language, published=at, fetched_at=at,
        content_hash=f"{hash((feed.id, title)) & (2**63 - 1):064d}", event_id=event_id,
    )  # fmt: skip
    session.add(item)
    session.flush()
    session.add(
        AssessmentRow(
            item_id=item.id, relevant=score >= 0.8 if relevant is None else relevant,
            score=score, categories=["platform_block"], country="PK", stage="enforced",
            matched_terms=["blocked"], evidence=["rule platform_block: blocked"],
            model_version="test-model", created_at=at,
        )
    )  # fmt: skip
    session.flush()
    return item


def test_triage_lists_items_near_the_threshold_and_flagged_ones_without_an_event(
    web: WebSurface, browser_client: TestClient, clock: FrozenClock
) -> None:
    now = clock.now()
    with web.context.sessions.begin() as session:
        feed = add_feed(session, "outlet-a", now)
        add_item(session, feed, "Near miss on X", 0.72, now - timedelta(hours=2))
        add_item(session, feed, "Flagged loose block", 0.99, now - timedelta(hours=1))
        add_item(session, feed, "Cooking recipes", 0.05, now - timedelta(hours=3))
        add_item(session, feed, "Old near miss", 0.75, now - timedelta(days=9))
    page = browser_client.get("/items")
    assert page.status_code == 200, page.text
    assert "Near miss on X" in page.text and "Flagged loose block" in page.text
    assert "Cooking recipes" not in page.text and "Old near miss" not in page.text
    assert page.text.index("Flagged loose block") < page.text.index("Near miss on X")
    assert "flagged, no event" in page.text and "0.72" in page.text
    everything = browser_client.get("/items?all=1&since=30d&relevant=no")
    assert "Cooking recipes" in everything.text and "Old near miss" in everything.text
    assert "Flagged loose block" not in everything.text
    assert browser_client.get("/items?score_lt=abc").status_code == 400


def test_a_verdict_button_writes_feedback_and_the_row_shows_it(
    web: WebSurface, browser_client: TestClient, clock: FrozenClock
) -> None:
    now = clock.now()
    with web.context.sessions.begin() as session:
        item_id = add_item(session, add_feed(session, "a", now), "Near miss", 0.7, now).id
    response = browser_client.post(
        f"/items/{item_id}/feedback", data={"verdict": "relevant", "back": "/items?since=7d"}
    )
    assert response.status_code == 303 and response.headers["location"] == "/items?since=7d"
    with web.context.sessions() as session:
        rows = session.scalars(select(FeedbackRow)).all()
    assert [(r.item_id, r.relevant, r.categories, r.country) for r in rows] == [
        (item_id, True, ["platform_block"], "PK")
    ]
    assert "Marked <strong>relevant</strong>" in browser_client.get("/items").text
    browser_client.post(f"/items/{item_id}/feedback", data={"verdict": "not_relevant"})
    assert "Marked <strong>not relevant</strong>" in browser_client.get("/items").text


def test_verdicts_need_the_write_scope(
    web: WebSurface, client: TestClient, make_token: Callable[..., str], clock: FrozenClock
) -> None:
    now = clock.now()
    with web.context.sessions.begin() as session:
        item_id = add_item(session, add_feed(session, "a", now), "Near miss", 0.7, now).id
    reader = {"Authorization": f"Bearer {make_token('read')}"}
    refused = client.post(
        f"/items/{item_id}/feedback", data={"verdict": "relevant"}, headers=reader
    )
    assert refused.status_code == 403
    with web.context.sessions() as session:
        assert session.scalars(select(FeedbackRow)).all() == []


def test_a_failing_feed_shows_under_failing_and_in_the_nav_badge(
    web: WebSurface, browser_client: TestClient, clock: FrozenClock
) -> None:
    now = clock.now()
    with web.context.sessions.begin() as session:
        add_feed(session, "healthy-one", now)
        add_feed(session, "broken-one", now, failures=3, error="HTTP 500", error_kind="http")
        add_item(session, session.scalars(select(FeedRow).filter_by(name="healthy-one")).one(),
                 "fresh", 0.1, now)  # fmt: skip
    failing = browser_client.get("/feeds?state=failing")
    assert failing.status_code == 200
    assert "broken-one" in failing.text and "healthy-one" not in failing.text
    assert "HTTP 500" in failing.text
    assert "failing (1)</a>" in failing.text and "healthy (1)</a>" in failing.text
    assert re.search(
        r'Sources <span class="badge bad" title="feeds failing">1</span>', failing.text
    )
    assert browser_client.get("/feeds?state=broken").status_code == 400


def _health(now: datetime, **changes: object) -> FeedHealth:
    values: dict[str, object] = dict(
        id=1, name="f", url="u", country=None, language=None, interval_s=900, enabled=True,
        gone=False, last_polled_at=now, last_success_at=now, next_poll_at=now,
        consecutive_failures=0, last_error_kind=None, last_error=None, moved_to=None,
        created_at=now - timedelta(days=60),
    )  # fmt: skip
    values.update(changes)
    return FeedHealth(**values)  # type: ignore[arg-type]


def test_silent_is_much_longer_than_the_usual_gap(clock: FrozenClock) -> None:
    now = clock.now()
    hourly = 3600.0
    assert (
        feed_state(_health(now, last_item_at=now - timedelta(hours=2), usual_gap_s=hourly), now)
        == "healthy"
    )
    assert (
        feed_state(_health(now, last_item_at=now - timedelta(hours=4), usual_gap_s=hourly), now)
        == "silent"
    )
    # A slow feed: 2 x its interval is the floor.
    slow = _health(
        now, interval_s=6 * 3600, last_item_at=now - timedelta(hours=10), usual_gap_s=600.0
    )
    assert feed_state(slow, now) == "healthy"
    # No usual gap: silent after 30 days without an item.
    assert feed_state(_health(now, last_item_at=now - timedelta(days=20)), now) == "healthy"
    assert feed_state(_health(now), now) == "silent"
    assert feed_state(_health(now, created_at=now - timedelta(days=2)), now) == "healthy"
    assert feed_state(_health(now, consecutive_failures=1), now) == "failing"
    assert feed_state(_health(now, enabled=False, consecutive_failures=1), now) == "disabled"


def test_a_feed_gone_quiet_is_listed_as_silent(
    web: WebSurface, browser_client: TestClient, clock: FrozenClock
) -> None:
    now = clock.now()
    with web.context.sessions.begin() as session:
        quiet = add_feed(session, "went-quiet", now)
        for hours in range(30, 50):  # hourly items that stopped 30 hours ago
            add_item(session, quiet, f"q{hours}", 0.1, now - timedelta(hours=hours))
        busy = add_feed(session, "busy", now)
        for hours in range(0, 20):
            add_item(session, busy, f"b{hours}", 0.1, now - timedelta(hours=hours))
    page = browser_client.get("/feeds?state=silent").text
    assert "went-quiet" in page and "busy" not in page


def test_feed_detail_has_its_polls_a_chart_and_poll_now(
    web: WebSurface, browser_client: TestClient, clock: FrozenClock
) -> None:
    now = clock.now()
    with web.context.sessions.begin() as session:
        feed = add_feed(
            session, "broken-one", now, failures=4, error="timed out", error_kind="timeout"
        )
        feed.next_poll_at = now + timedelta(hours=1)
        feed.broken_alerted = True
        feed_id = feed.id
    page = browser_client.get(f"/feeds/{feed_id}")
    assert page.status_code == 200
    assert "<svg" in page.text and "<title" in page.text and "timed out" in page.text
    assert "feeds.yaml" in page.text
    assert browser_client.post(f"/feeds/{feed_id}/poll-now").status_code == 303
    assert browser_client.post(f"/feeds/{feed_id}/reset-errors").status_code == 303
    with web.context.sessions() as session:
        row = session.get(FeedRow, feed_id)
        assert row is not None
        assert row.next_poll_at == now
        assert (row.consecutive_failures, row.broken_alerted) == (0, False)
    assert browser_client.get("/feeds/9999").status_code == 404


def test_retry_puts_a_dead_alert_back_in_the_queue(
    web: WebSurface, browser_client: TestClient, clock: FrozenClock
) -> None:
    now = clock.now()
    measure = Measure(
        country="PK", categories=["platform_block"], stage="enforced",
        reports=[Report("Pakistan blocks X")],
        alerts=[("ops", "new", "dead"), ("team", "new", "dead"), ("chat", "new", "sent")],
    )  # fmt: skip
    with web.context.sessions.begin() as session:
        add_measure(session, measure, now - timedelta(hours=3))
        ids = {row.route: row.id for row in session.scalars(select(AlertRow))}
    page = browser_client.get("/alerts?status=dead")
    assert "dead (2)</a>" in page.text and "sent (1)</a>" in page.text
    assert "Pakistan blocks X" in page.text and "Retry all 2 dead" in page.text
    assert browser_client.post(f"/alerts/{ids['ops']}/retry").status_code == 303
    with web.context.sessions() as session:
        statuses = {
            row.route: (row.status, row.attempts) for row in session.scalars(select(AlertRow))
        }
    assert statuses == {"ops": ("pending", 0), "team": ("dead", 1), "chat": ("sent", 1)}
    browser_client.post("/alerts/retry-dead", data={"route": "team"})
    with web.context.sessions() as session:
        assert session.get(AlertRow, ids["team"]).status == "pending"  # type: ignore[union-attr]


def test_system_shows_a_rejected_reload_and_the_config_errors(
    web: WebSurface, browser_client: TestClient, clock: FrozenClock, tmp_path: Path
) -> None:
    (tmp_path / "feeds.yaml").write_text("feeds:\n  - name: a\n    url: 12\n    interval: soon\n")
    message = f"{tmp_path / 'feeds.yaml'}:4: feeds[0].interval: not a duration"
    web.context.daemon_state = lambda: DaemonState(
        scheduler_running=True, last_tick_at=clock.now(), tick_seconds=5.0,
        jobs=(JobInfo("poll", clock.now() + timedelta(seconds=5)),),
        reload=ReloadStatus(clock.now(), ok=False, message=message),
    )  # fmt: skip
    page = browser_client.get("/system")
    assert page.status_code == 200
    assert "rejected" in page.text and f'<pre class="ops-error">{message}</pre>' in page.text
    assert "does not load" in page.text and "feeds.yaml" in page.text
    assert "poll" in page.text and "analyst" in page.text  # the job and the token
    web.context.daemon_state = lambda: None
    assert "no scheduler in this process" in browser_client.get("/system").text


def test_a_token_is_revoked_from_the_system_page(
    web: WebSurface, browser_client: TestClient, make_token: Callable[..., str]
) -> None:
    make_token("feeds", name="reader-app")
    page = browser_client.get("/system").text
    token_id = re.search(
        r'/system/tokens/(\d+)/revoke"><button[^>]*aria-label="Revoke token reader-app"', page
    )
    assert token_id is not None
    assert browser_client.post(f"/system/tokens/{token_id.group(1)}/revoke").status_code == 303
    assert "revoked" in browser_client.get("/system").text
