"""End to end with real parts: an HTTP feed server, a database file or server, the real
classifier, a real SMTP server and a real webhook receiver, all on 127.0.0.1."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from monitor.classify import Classifier
from monitor.clock import FrozenClock
from monitor.store.models import AlertRow, AssessmentRow, FeedRow, ItemRow, ItemSourceRow
from tests.support.feedserver import FeedServer, rss
from tests.support.receivers import SmtpReceiver, WebhookReceiver
from tests.support.stack import make_runtime, write_config

MEASURE = {
    "title": "Vietnam orders telecom operators to block Telegram nationwide",
    "link": "https://news.example.org/vn/telegram-block?utm_source=rss",
    "guid": "vn-telegram-1",
    "description": "The Ministry of Information and Communications ordered internet service "
    "providers to block access to the messaging app Telegram within 24 hours.",
    "pubDate": "Mon, 23 Nov 2026 06:00:00 +0000",
}
UNRELATED = {
    "title": "Local football club wins the regional cup",
    "link": "https://news.example.org/sport/cup",
    "guid": "sport-1",
    "description": "The team celebrated in the city centre after a late goal in extra time.",
    "pubDate": "Mon, 23 Nov 2026 05:00:00 +0000",
}


def _routes(smtp: SmtpReceiver, webhook: WebhookReceiver) -> tuple[list[dict[str, object]], dict]:
    routes: list[dict[str, object]] = [
        {"name": "mail", "url": "${MAIL_URL}", "min_score": 0.5},
        {"name": "hook", "url": "${HOOK_URL}", "min_score": 0.5},
    ]
    env = {"MAIL_URL": smtp.apprise_url(), "HOOK_URL": webhook.apprise_url()}
    return routes, env


def _stack(tmp_path: Path, db_url: str, server: FeedServer, smtp, webhook, clock, feeds=None):
    routes, env = _routes(smtp, webhook)
    feeds = feeds or [{"name": "VN News", "url": server.url("/vn.xml"), "country": "VN"}]
    config = write_config(tmp_path / "feeds.yaml", feeds, routes)
    return make_runtime(config, db_url, clock, env)


def test_measure_alerts_once_by_mail_and_webhook(
    tmp_path: Path,
    db_url: str,
    feed_server: FeedServer,
    smtp: SmtpReceiver,
    webhook: WebhookReceiver,
    clock: FrozenClock,
) -> None:
    feed_server.serve("/vn.xml", rss([UNRELATED]))
    runtime = _stack(tmp_path, db_url, feed_server, smtp, webhook, clock)

    first = runtime.poller.run_once()
    runtime.delivery.deliver_due()
    assert (first.polled, first.new_items, first.flagged) == (1, 1, 0)
    assert smtp.messages == [] and webhook.posts == []

    feed_server.serve("/vn.xml", rss([MEASURE, UNRELATED]))
    clock.advance(timedelta(minutes=20))
    second = runtime.poller.run_once()
    report = runtime.delivery.deliver_due()
    assert (second.new_items, second.flagged, report.sent) == (1, 1, 2)

    with runtime.sessions() as session:
        verdict = session.scalars(select(AssessmentRow).where(AssessmentRow.relevant)).one()
        # The daemon's path runs the packaged trained classifier, rules and model together.
        assert verdict.model_version == Classifier.load().version
        assert "platform_block" in verdict.categories and verdict.country == "VN"
    mail = smtp.wait_for(1)[0]
    assert "Telegram" in mail["Subject"]
    body = mail.get_body(("html", "plain"))
    assert body is not None
    text = body.get_content()
    assert "news.example.org/vn/telegram-block" in text
    assert "utm_source" not in text  # canonical link, tracking parameter gone
    assert mail["Subject"].startswith("Viet Nam: ") and "platform block" in mail["Subject"]
    assert "Vietnam orders telecom operators to block Telegram" in text
    post = webhook.wait_for(1)[0]
    assert "Telegram" in post["title"]
    # The reason is the item's own sentence, its deciding words marked, not model internals.
    assert re.search(r"\*[^*]+\*", post["message"]), post["message"]
    assert "rule " not in post["message"] and "model" not in post["message"]

    # Unchanged feed: a conditional GET, nothing stored, nothing sent.
    clock.advance(timedelta(minutes=20))
    third = runtime.poller.run_once()
    again = runtime.delivery.deliver_due()
    assert (third.new_items, again.sent) == (0, 0)
    assert feed_server.requests[-1].headers.get("If-None-Match")
    assert len(smtp.messages) == 1 and len(webhook.posts) == 1
    runtime.close()


def test_smtp_down_keeps_alert_pending_until_it_returns(
    tmp_path: Path,
    db_url: str,
    feed_server: FeedServer,
    smtp: SmtpReceiver,
    webhook: WebhookReceiver,
    clock: FrozenClock,
) -> None:
    feed_server.serve("/vn.xml", rss([MEASURE]))
    runtime = _stack(tmp_path, db_url, feed_server, smtp, webhook, clock)
    smtp.stop()

    runtime.poller.run_once()
    down = runtime.delivery.deliver_due()
    assert (down.sent, down.failed) == (1, 1)  # the webhook went out, the mail did not
    with runtime.sessions() as session:
        mail_row = session.scalars(select(AlertRow).where(AlertRow.route == "mail")).one()
        assert mail_row.status == "pending" and mail_row.attempts == 1
        assert mail_row.last_error and "MAIL_URL" not in mail_row.last_error
        assert smtp.apprise_url() not in mail_row.last_error

    smtp.start()
    early = runtime.delivery.deliver_due()
    assert early.sent == 0  # backoff: not due yet
    clock.advance(timedelta(minutes=5))
    later = runtime.delivery.deliver_due()
    assert later.sent == 1
    assert len(smtp.wait_for(1)) == 1
    clock.advance(timedelta(hours=2))
    assert runtime.delivery.deliver_due().sent == 0
    assert len(smtp.messages) == 1 and len(webhook.posts) == 1
    runtime.close()


def test_same_story_in_two_feeds_is_one_item_with_two_sources(
    tmp_path: Path,
    db_url: str,
    feed_server: FeedServer,
    smtp: SmtpReceiver,
    webhook: WebhookReceiver,
    clock: FrozenClock,
) -> None:
    copy = dict(MEASURE, guid="other-guid-77", link=MEASURE["link"] + "&utm_medium=feed")
    feed_server.serve("/a.xml", rss([MEASURE]))
    feed_server.serve("/b.xml", rss([copy]))
    feeds = [
        {"name": "Feed A", "url": feed_server.url("/a.xml"), "country": "VN"},
        {"name": "Feed B", "url": feed_server.url("/b.xml")},
    ]
    runtime = _stack(tmp_path, db_url, feed_server, smtp, webhook, clock, feeds)
    runtime.poller.run_once()
    runtime.delivery.deliver_due()
    with runtime.sessions() as session:
        assert session.scalar(select(func.count(ItemRow.id))) == 1
        assert session.scalar(select(func.count(ItemSourceRow.id))) == 2
    assert len(smtp.wait_for(1)) == 1
    runtime.close()


def test_seed_articles_each_raise_an_alert(
    tmp_path: Path,
    shared: Path,
    feed_server: FeedServer,
    smtp: SmtpReceiver,
    webhook: WebhookReceiver,
    clock: FrozenClock,
) -> None:
    seeds_file = shared / "corpus" / "seeds" / "seeds.jsonl"
    if not seeds_file.exists():
        pytest.skip(f"seed articles not found at {seeds_file}")
    seeds = [json.loads(line) for line in seeds_file.read_text("utf-8").splitlines() if line]
    items = [
        {
            "title": seed["title"],
            "description": seed["summary"],
            "guid": seed["id"],
            "link": f"https://seeds.example.org/{seed['id']}",
        }
        for seed in seeds
    ]
    feed_server.serve("/seeds.xml", rss(items))
    url = f"sqlite:///{tmp_path / 'seeds.db'}"
    from monitor.store.db import upgrade

    upgrade(url)
    feeds = [{"name": "Seeds", "url": feed_server.url("/seeds.xml")}]
    runtime = _stack(tmp_path, url, feed_server, smtp, webhook, clock, feeds)
    report = runtime.poller.run_once()
    assert report.flagged == len(seeds) == 5
    runtime.delivery.deliver_due()
    with runtime.sessions() as session:
        routed = session.scalars(select(AlertRow).where(AlertRow.route == "hook")).all()
        countries = {row.payload["country"] for row in routed}
    assert countries <= {"VN", "LA"} and "LA" in countries and "VN" in countries
    assert len(webhook.wait_for(len(routed))) == len(routed) >= 1
    runtime.close()


def test_every_feed_failing_at_once_is_blamed_on_the_network(
    tmp_path: Path, db_url: str, smtp: SmtpReceiver, webhook: WebhookReceiver, clock: FrozenClock
) -> None:
    from tests.support.receivers import free_port

    feeds = [
        {"name": f"Dead {n}", "url": f"http://127.0.0.1:{free_port()}/feed.xml"} for n in range(3)
    ]
    routes, env = _routes(smtp, webhook)
    config = write_config(tmp_path / "feeds.yaml", feeds, routes)
    runtime = make_runtime(config, db_url, clock, env)
    report = runtime.poller.run_once()
    assert report.offline
    with runtime.sessions() as session:
        rows = session.scalars(select(FeedRow)).all()
        assert {row.consecutive_failures for row in rows} == {0}
        assert {row.last_error_kind for row in rows} == {"offline"}
    runtime.close()


def test_broken_feed_alerts_admins_once_and_again_on_recovery(
    tmp_path: Path,
    db_url: str,
    feed_server: FeedServer,
    webhook: WebhookReceiver,
    clock: FrozenClock,
) -> None:
    feed_server.serve("/ok.xml", rss([UNRELATED]))
    feed_server.fault("/broken.xml", "status", status=500)
    feeds = [
        {"name": "Fine", "url": feed_server.url("/ok.xml")},
        {"name": "Flaky", "url": feed_server.url("/broken.xml")},
    ]
    routes = [{"name": "admins", "url": "${HOOK_URL}", "kinds": "[feed_health]"}]
    config = write_config(tmp_path / "feeds.yaml", feeds, routes, defaults="feed_broken_after: 3")
    runtime = make_runtime(config, db_url, clock, {"HOOK_URL": webhook.apprise_url()})
    for _ in range(5):
        runtime.poller.run_once(only="Flaky")
        runtime.delivery.deliver_due()
        clock.advance(timedelta(hours=1))
    posts = webhook.wait_for(1)
    assert len(posts) == 1 and "Flaky" in posts[0]["title"]

    feed_server.serve("/broken.xml", rss([UNRELATED]))
    runtime.poller.run_once(only="Flaky")
    runtime.delivery.deliver_due()
    posts = webhook.wait_for(2)
    assert len(posts) == 2 and "works again" in posts[1]["title"]
    with runtime.sessions() as session:
        fine = session.scalars(select(FeedRow).where(FeedRow.name == "Fine")).one()
        assert fine.consecutive_failures == 0
    runtime.close()


def test_feed_headers_from_env_reach_the_feed_host_only(
    tmp_path: Path, db_url: str, clock: FrozenClock
) -> None:
    with FeedServer() as own, FeedServer() as elsewhere:
        own.serve("/private.xml", rss([UNRELATED]))
        elsewhere.serve("/moved.xml", rss([UNRELATED]))
        # Same machine, another host name: a redirect off the configured host.
        moved = elsewhere.url("/moved.xml").replace("127.0.0.1", "localhost")
        own.fault("/moving.xml", "redirect", location=moved, status=302)
        headers = '{X-Token: "${T}"}'
        feeds = [
            {"name": "Private", "url": own.url("/private.xml"), "headers": headers},
            {"name": "Moving", "url": own.url("/moving.xml"), "headers": headers},
        ]
        config = write_config(tmp_path / "feeds.yaml", feeds)
        runtime = make_runtime(config, db_url, clock, {"T": "tok-123"})
        report = runtime.poller.run_once()
        assert report.polled == 2 and report.failed == 0
        assert len(own.requests) == 2
        assert all(r.headers.get("X-Token") == "tok-123" for r in own.requests)
        assert len(elsewhere.requests) == 1
        assert "X-Token" not in elsewhere.requests[0].headers
        runtime.close()


def test_an_http_error_answer_proves_the_network_so_dead_feeds_are_blamed(
    tmp_path: Path, db_url: str, feed_server: FeedServer, clock: FrozenClock
) -> None:
    """A 404 is an answer from across the network: three unreachable feeds in the same
    cycle are their own fault, not the server being offline."""
    from tests.support.receivers import free_port

    feed_server.fault("/moved.xml", "status", status=404)
    feeds = [{"name": "Moved", "url": feed_server.url("/moved.xml")}] + [
        {"name": f"Dead {n}", "url": f"http://127.0.0.1:{free_port()}/feed.xml"} for n in range(3)
    ]
    runtime = make_runtime(write_config(tmp_path / "feeds.yaml", feeds), db_url, clock)
    report = runtime.poller.run_once()
    with runtime.sessions() as session:
        rows = {row.name: row for row in session.scalars(select(FeedRow))}
    runtime.close()
    assert not report.offline
    assert rows["Moved"].last_error_kind == "not_found"
    for n in range(3):
        assert (rows[f"Dead {n}"].last_error_kind, rows[f"Dead {n}"].consecutive_failures) == (
            "connect",
            1,
        )
