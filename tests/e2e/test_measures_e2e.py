"""One measure, one alert: events, stage updates, digests and rate limits, end to end with a
real feed server, the real classifier, a real database and a real webhook receiver."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select

from monitor.clock import FrozenClock
from monitor.daemon.bootstrap import Runtime
from monitor.store.models import AlertRow, EventRow
from tests.support.feedserver import FeedServer, rss
from tests.support.receivers import WebhookReceiver
from tests.support.stack import make_runtime, write_config

WIRE_TITLES = [
    "Vietnam orders telecom operators to block Telegram",
    "Vietnam orders telecoms to block Telegram messaging app",
    "Vietnam orders network operators to block Telegram",
    "Vietnam tells telecom operators to block Telegram app",
    "Vietnam orders telecom operators to block Telegram, citing crime",
]
WIRE_SUMMARY = (
    "The Ministry of Information and Communications ordered internet service providers to "
    "block the messaging app Telegram, saying it was used by criminal groups."
)
FOLLOW_UP = {
    "title": "Vietnam lifts Telegram block after the app agrees to open a local office",
    "description": "Authorities restored access to Telegram on Friday, lifting the block "
    "ordered last week by the Ministry of Information and Communications.",
}
OTHER_MEASURE = {
    "title": "Vietnam drafts decree requiring social media users to verify accounts with ID",
    "description": "A draft decree would require every social network account in Vietnam to "
    "be verified with a phone number or national ID before it can post.",
}


def _item(n: int, title: str, summary: str, day: int = 23) -> dict[str, str]:
    return {
        "title": title,
        "description": summary,
        "guid": f"item-{n}",
        "link": f"https://outlet{n}.example.org/story/{n}",
        "pubDate": f"{['Mon', 'Tue', 'Wed', 'Thu', 'Fri'][(day - 23) % 5]}, "
        f"{day} Nov 2026 06:00:00 +0000",
    }


def _five_feeds(server: FeedServer) -> list[dict[str, str]]:
    return [{"name": f"Outlet {n}", "url": server.url(f"/o{n}.xml")} for n in range(5)]


# A route that collects its alerts for a digest at 08:00 UTC every day.
DAILY_DIGEST: dict[str, object] = {
    "name": "daily",
    "url": "${HOOK_URL}",
    "delivery": "digest",
    "digest": '{cron: "0 8 * * *", timezone: UTC}',
}


def _instant_routes() -> list[dict[str, object]]:
    return [
        {"name": "hook-a", "url": "${HOOK_URL}"},
        {"name": "hook-b", "url": "${HOOK_URL}", "countries": "[VN]"},
    ]


def test_one_story_in_five_feeds_then_a_stage_change_sends_two_alerts_per_route(
    tmp_path: Path,
    db_url: str,
    feed_server: FeedServer,
    webhook: WebhookReceiver,
    clock: FrozenClock,
) -> None:
    for n in range(5):
        feed_server.serve(f"/o{n}.xml", rss([]))
    config = write_config(tmp_path / "feeds.yaml", _five_feeds(feed_server), _instant_routes())
    runtime = make_runtime(config, db_url, clock, {"HOOK_URL": webhook.apprise_url()})

    for poll, outlets in enumerate([(0, 1), (2, 3), (4,)]):
        for n in outlets:
            feed_server.serve(f"/o{n}.xml", rss([_item(n, WIRE_TITLES[n], WIRE_SUMMARY)]))
        runtime.poller.run_once()
        runtime.delivery.deliver_due()
        clock.advance(timedelta(hours=2 + poll))
    assert len(webhook.wait_for(2)) == 2  # "new", once per route

    follow = _item(9, FOLLOW_UP["title"], FOLLOW_UP["description"], day=25)
    feed_server.serve("/o0.xml", rss([follow, _item(0, WIRE_TITLES[0], WIRE_SUMMARY)]))
    clock.advance(timedelta(days=2))
    runtime.poller.run_once()
    runtime.delivery.deliver_due()
    posts = webhook.wait_for(4)
    assert len(posts) == 4
    with runtime.sessions() as session:
        kinds = sorted(session.scalars(select(AlertRow.kind).where(AlertRow.route == "hook-a")))
        assert kinds == ["new", "update"]
        events = session.scalars(select(EventRow)).all()
        assert len(events) == 1 and events[0].item_count == 6 and events[0].stage == "lifted"
    assert any("lifted" in post["message"] for post in posts[2:])
    runtime.close()


def test_two_measures_in_one_country_in_one_week_are_two_events(
    tmp_path: Path,
    db_url: str,
    feed_server: FeedServer,
    webhook: WebhookReceiver,
    clock: FrozenClock,
) -> None:
    items = [
        _item(1, WIRE_TITLES[0], WIRE_SUMMARY),
        _item(2, OTHER_MEASURE["title"], OTHER_MEASURE["description"], day=25),
    ]
    feed_server.serve("/vn.xml", rss(items))
    feeds = [{"name": "VN", "url": feed_server.url("/vn.xml"), "country": "VN"}]
    config = write_config(tmp_path / "feeds.yaml", feeds, _instant_routes()[:1])
    runtime = make_runtime(config, db_url, clock, {"HOOK_URL": webhook.apprise_url()})
    runtime.poller.run_once()
    runtime.delivery.deliver_due()
    with runtime.sessions() as session:
        assert session.scalar(select(func.count(EventRow.id))) == 2
    assert len(webhook.wait_for(2)) == 2
    runtime.close()


MEASURES_BY_COUNTRY = [
    ("Pakistan blocks X nationwide ahead of protests", "Authorities in Pakistan ordered "
     "operators to block the social network X across the country."),
    ("Ethiopia shuts down mobile internet in Amhara region", "The government cut mobile data "
     "in the Amhara region as fighting spread, residents said."),
    ("Russia bans VPN services that ignore the state registry", "Roskomnadzor said it will block "
     "VPN providers that refuse to connect to the state registry of banned sites."),
    ("Turkey throttles Twitter after the earthquake", "Internet monitors said access to Twitter "
     "was throttled by Turkish providers on a government order."),
    ("Iran orders a nationwide internet shutdown during protests", "Iran's authorities cut "
     "internet access across the country as protests spread."),
]  # fmt: skip


def _world_runtime(
    tmp_path: Path,
    db_url: str,
    feed_server: FeedServer,
    webhook: WebhookReceiver,
    clock: FrozenClock,
    routes: list[dict[str, object]],
    stories: int = 5,
) -> Runtime:
    """One feed carrying `stories` measures in different countries, routes to the webhook."""
    items = [_item(n, title, summary) for n, (title, summary) in enumerate(MEASURES_BY_COUNTRY)]
    feed_server.serve("/world.xml", rss(items[:stories]))
    feeds = [{"name": "World", "url": feed_server.url("/world.xml")}]
    config = write_config(tmp_path / "feeds.yaml", feeds, routes)
    return make_runtime(config, db_url, clock, {"HOOK_URL": webhook.apprise_url()})


def test_digest_groups_the_day_by_country_and_an_empty_day_sends_nothing(
    tmp_path: Path,
    db_url: str,
    feed_server: FeedServer,
    webhook: WebhookReceiver,
) -> None:
    clock = FrozenClock(datetime(2026, 11, 23, 6, 0, tzinfo=UTC))
    routes = [DAILY_DIGEST]
    runtime = _world_runtime(tmp_path, db_url, feed_server, webhook, clock, routes, stories=3)
    runtime.poller.run_once()
    assert runtime.delivery.deliver_due().sent == 0  # nothing instant on a digest route
    assert runtime.delivery.send_digests() == 0  # 06:00: not yet time
    clock.set(datetime(2026, 11, 23, 8, 0, 1, tzinfo=UTC))
    assert runtime.delivery.send_digests() == 1
    posts = webhook.wait_for(1)
    assert len(posts) == 1
    body = posts[0]["message"]
    assert "Pakistan" in body and "Ethiopia" in body and "Russia" in body
    assert body.index("Ethiopia") < body.index("Pakistan") < body.index("Russia")
    clock.set(datetime(2026, 11, 24, 8, 0, 1, tzinfo=UTC))
    assert runtime.delivery.send_digests() == 0  # an empty day sends nothing
    assert len(webhook.posts) == 1
    runtime.close()


def test_a_failing_digest_counts_attempts_backs_off_then_waits_for_its_next_time(
    tmp_path: Path,
    db_url: str,
    feed_server: FeedServer,
    webhook: WebhookReceiver,
) -> None:
    from monitor.store.models import RouteStateRow

    clock = FrozenClock(datetime(2026, 11, 23, 8, 0, 1, tzinfo=UTC))
    routes = [DAILY_DIGEST]
    runtime = _world_runtime(tmp_path, db_url, feed_server, webhook, clock, routes, stories=2)
    runtime.poller.run_once()
    runtime.delivery.max_attempts = 3
    webhook.status = 500
    clock.set(datetime(2026, 11, 24, 8, 0, 1, tzinfo=UTC))
    retries = []
    for _ in range(3):
        assert runtime.delivery.send_digests() == 0
        with runtime.sessions() as session:
            rows = session.scalars(select(AlertRow).where(AlertRow.route == "daily")).all()
            state = session.get(RouteStateRow, "daily")
            assert state is not None and state.next_digest_at is not None
            retries.append(state.next_digest_at.replace(tzinfo=UTC) - clock.now())
            clock.set(state.next_digest_at.replace(tzinfo=UTC) + timedelta(seconds=1))
    assert {row.attempts for row in rows} == {3}
    assert {row.status for row in rows} == {"digest"}  # still queued for a digest
    assert all("500" in (row.last_error or "") for row in rows)
    assert retries[0] < retries[1] < timedelta(hours=1)  # backoff
    assert retries[2] > timedelta(hours=20)  # then the next regular digest time
    webhook.status = 200
    assert runtime.delivery.send_digests() == 1  # and they go out together, once it answers
    posts = webhook.wait_for(4)  # three refused attempts, then the digest
    assert len(posts) == 4 and "2 measures" in posts[-1]["title"]
    runtime.close()


def test_rate_limit_sends_two_now_and_the_rest_in_the_next_digest(
    tmp_path: Path,
    db_url: str,
    feed_server: FeedServer,
    webhook: WebhookReceiver,
    clock: FrozenClock,
) -> None:
    routes: list[dict[str, object]] = [
        {
            "name": "limited",
            "url": "${HOOK_URL}",
            "rate_limit": "{count: 2, per: 1h}",
            "digest": '{cron: "0 * * * *", timezone: UTC}',
        }
    ]
    runtime = _world_runtime(tmp_path, db_url, feed_server, webhook, clock, routes)
    report = runtime.poller.run_once()
    assert report.flagged == 5
    assert runtime.delivery.deliver_due().sent == 2
    assert runtime.delivery.send_digests() == 0
    clock.advance(timedelta(hours=1, seconds=1))
    assert runtime.delivery.send_digests() == 1
    posts = webhook.wait_for(3)
    assert len(posts) == 3
    assert posts[2]["title"].startswith("Digest") and "3 measures" in posts[2]["title"]
    runtime.close()


def test_two_processes_sharing_one_database_alert_once(
    tmp_path: Path,
    db_url: str,
    feed_server: FeedServer,
    webhook: WebhookReceiver,
    clock: FrozenClock,
) -> None:
    """Two daemons on one database (PostgreSQL: SKIP LOCKED leases; SQLite: file locks)
    poll and deliver at the same time; each (route, event, kind) still goes out once."""
    import threading

    for n in range(5):
        feed_server.serve(f"/o{n}.xml", rss([_item(n, WIRE_TITLES[n], WIRE_SUMMARY)]), delay_s=0.05)
    config = write_config(tmp_path / "feeds.yaml", _five_feeds(feed_server), _instant_routes())
    env = {"HOOK_URL": webhook.apprise_url()}
    first = make_runtime(config, db_url, clock, env)
    second = make_runtime(config, db_url, clock, env)
    errors: list[BaseException] = []

    def work(runtime: object) -> None:
        try:
            runtime.poller.run_once()  # type: ignore[attr-defined]
            runtime.delivery.deliver_due()  # type: ignore[attr-defined]
        except BaseException as exc:  # noqa: BLE001 - surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(rt,)) for rt in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    first.delivery.deliver_due()
    second.delivery.deliver_due()
    posts = webhook.wait_for(2)
    assert len(posts) == 2  # one event, two routes
    with first.sessions() as session:
        assert session.scalar(select(func.count(EventRow.id))) == 1
        assert session.scalar(select(func.count(AlertRow.id))) == 2
    first.close()
    second.close()


def test_rate_limited_route_without_digest_block_gets_an_hourly_overflow_digest(
    tmp_path: Path,
    db_url: str,
    feed_server: FeedServer,
    webhook: WebhookReceiver,
    clock: FrozenClock,
) -> None:
    routes: list[dict[str, object]] = [
        {"name": "limited", "url": "${HOOK_URL}", "rate_limit": "{count: 2, per: 1h}"}
    ]
    runtime = _world_runtime(tmp_path, db_url, feed_server, webhook, clock, routes)
    runtime.poller.run_once()
    assert runtime.delivery.deliver_due().sent == 2
    clock.advance(timedelta(hours=1, seconds=1))
    assert runtime.delivery.send_digests() == 1  # nothing overflowed is dropped
    assert "3 measures" in webhook.wait_for(3)[2]["title"]
    runtime.close()
