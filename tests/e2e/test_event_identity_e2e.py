"""One measure, one alert, however it is worded: five outlets cover a block, its lifting and
another order over three polls, through the real feed server, the packaged classifier, a
real database (SQLite file and PostgreSQL) and a real webhook receiver."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from monitor.clock import FrozenClock
from monitor.daemon.bootstrap import Runtime
from monitor.store.models import AlertRow, EventRow
from tests.support.feedserver import FeedServer, rss
from tests.support.receivers import WebhookReceiver
from tests.support.stack import make_runtime, write_config

# (outlet, poll, hours after 06:00 UTC, title, summary): one block in five wordings, its
# lifting a day later, and a separate order in the same country.
STORY = [
    (0, 0, 0, "Pakistan blocks access to X nationwide on interior ministry orders",
     "Users across the country could not reach the platform on Saturday after the interior "
     "ministry instructed the telecom regulator to suspend it."),
    (1, 0, 1, "Pakistan restricts social media platform X, users report outages nationwide",
     "Internet users in Karachi, Lahore and Islamabad said the service failed to load."),
    (2, 1, 3, "X inaccessible across Pakistan after government order",
     "The platform formerly known as Twitter has been unreachable since the weekend."),
    (3, 1, 4, "Pakistan telecom authority confirms X blocked on ministry instructions",
     "The Pakistan Telecommunication Authority said it acted on a letter from the interior "
     "ministry citing national security."),
    (4, 2, 30, "Pakistan restores access to X after Islamabad High Court order",
     "The court ordered the authority to lift the suspension, and users said the service was "
     "working again on Monday."),
    (0, 2, 31, "Pakistan orders VPN users to register with the telecom regulator",
     "Unregistered virtual private networks will be blocked from next month, the Pakistan "
     "Telecommunication Authority said."),
]  # fmt: skip
START = datetime(2026, 11, 21, 6, 0, tzinfo=UTC)


def _entry(number: int, outlet: int, hours: int, title: str, summary: str) -> dict[str, str]:
    when = START + timedelta(hours=hours)
    return {
        "title": title,
        "description": summary,
        "guid": f"story-{number}",
        "link": f"https://outlet{outlet}.example.org/news/{number}",
        "pubDate": when.strftime("%a, %d %b %Y %H:%M:%S +0000"),
    }


def _run_three_polls(
    tmp_path: Path,
    db_url: str,
    feed_server: FeedServer,
    webhook: WebhookReceiver,
    routes: list[dict[str, object]],
) -> tuple[FrozenClock, Runtime]:
    clock = FrozenClock(START + timedelta(minutes=30))
    feeds = [{"name": f"Outlet {n}", "url": feed_server.url(f"/o{n}.xml")} for n in range(5)]
    served: dict[int, list[dict[str, str]]] = {n: [] for n in range(5)}
    for outlet in served:
        feed_server.serve(f"/o{outlet}.xml", rss([]))
    config = write_config(tmp_path / "feeds.yaml", feeds, routes)
    runtime = make_runtime(config, db_url, clock, {"HOOK_URL": webhook.apprise_url()})
    for poll, poll_time in enumerate((2, 5, 32)):
        clock.set(START + timedelta(hours=poll_time))
        for number, (outlet, at_poll, hours, title, summary) in enumerate(STORY):
            if at_poll == poll:
                served[outlet].insert(0, _entry(number, outlet, hours, title, summary))
                feed_server.serve(f"/o{outlet}.xml", rss(served[outlet]))
        runtime.poller.run_once()
        runtime.delivery.deliver_due()
    return clock, runtime


def test_five_outlets_over_three_polls_give_new_update_new(
    tmp_path: Path, db_url: str, feed_server: FeedServer, webhook: WebhookReceiver
) -> None:
    routes: list[dict[str, object]] = [{"name": "instant", "url": "${HOOK_URL}"}]
    _, runtime = _run_three_polls(tmp_path, db_url, feed_server, webhook, routes)
    posts = webhook.wait_for(3)
    titles = [post["title"] for post in posts]
    # Which outlet of a poll is stored first is up to the fetch threads: the first report
    # says "ordered" or "blocked", and the other wording then settles the stage quietly.
    assert titles[0] in {
        "Pakistan: platform block · X (Twitter) · enacted",
        "Pakistan: platform block · X (Twitter) · enforced",
    }
    assert sorted(titles[1:]) == [
        "Pakistan: identity verification, vpn restriction · VPNs · enacted",
        "Update · Pakistan: platform block · X (Twitter) · enforced → lifted",
    ]
    assert len(webhook.posts) == 3  # and nothing more after a pause
    lifted = next(post["message"] for post in posts if post["title"].startswith("Update"))
    assert "stage enforced → lifted · now 5 reports" in lifted
    assert "https://outlet4.example.org/news/4" in lifted
    assert "Outlet 4 · 4 other reports" in lifted
    for post in posts:
        assert "rule " not in post["message"] and "model" not in post["message"]
    with runtime.sessions() as session:
        kinds = session.scalars(select(AlertRow.kind).order_by(AlertRow.id)).all()
        assert sorted(kinds) == ["new", "new", "update"]
        events = session.scalars(select(EventRow).order_by(EventRow.id)).all()
        assert [(e.country, e.stage, e.item_count) for e in events] == [
            ("PK", "lifted", 5),
            ("PK", "enacted", 1),
        ]
        assert events[0].targets == ["platform:x"]
        assert events[1].targets == ["tool:vpn"]
    runtime.close()


def test_a_digest_lists_each_event_once_with_its_current_stage_and_reports(
    tmp_path: Path, db_url: str, feed_server: FeedServer, webhook: WebhookReceiver
) -> None:
    routes: list[dict[str, object]] = [
        {
            "name": "daily",
            "url": "${HOOK_URL}",
            "delivery": "digest",
            "digest": '{cron: "0 18 * * *", timezone: UTC}',
        }
    ]
    clock, runtime = _run_three_polls(tmp_path, db_url, feed_server, webhook, routes)
    assert webhook.posts == []
    clock.set(START + timedelta(hours=36, seconds=1))  # 18:00 the day after
    assert runtime.delivery.send_digests() == 1
    body = webhook.wait_for(1)[0]["message"]
    lines = [line for line in body.splitlines() if line.startswith("- ")]
    assert len(lines) == 2, body
    lines.sort(key=lambda line: "vpn" in line)
    assert lines[0].startswith(
        ("- platform block · X (Twitter) · enacted → lifted: ",
         "- platform block · X (Twitter) · enforced → lifted: ")
    )  # fmt: skip
    assert "Pakistan restores access to X" in lines[0] and "5 reports" in lines[0]
    assert lines[1].startswith("- identity verification, vpn restriction · VPNs · enacted: ")
    runtime.close()
