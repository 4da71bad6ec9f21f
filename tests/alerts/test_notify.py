"""Delivery through real Apprise to real receivers on 127.0.0.1, and the failure paths."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from monitor.alerts.markup import BodyFormat, RenderedAlert, format_for_url
from monitor.alerts.notify import (
    AppriseNotifier,
    ConsoleNotifier,
    RecordingNotifier,
    redact_url,
    scrub,
    with_timeouts,
)
from monitor.alerts.render import render
from monitor.domain import AlertMessage
from monitor.errors import NotifyError
from tests.support.receivers import SmtpReceiver, WebhookReceiver, free_port

MESSAGE = AlertMessage(
    kind="new",
    title="Authorities order nationwide mobile data shutdown",
    link="https://news.example.org/story/42",
    source="Example Wire",
    country="ET",
    categories=("shutdown",),
    stage="enforced",
    score=0.93,
    matched_terms=("mobile data", "shutdown"),
    evidence=("rule shutdown: 'mobile data' near 'cut'",),
    published=datetime(2026, 11, 23, 7, 30, tzinfo=UTC),
    targets=("mobile data",),
    quote="Operators cut mobile data across the country on Monday.",
    quote_marks=((14, 25),),
)
SUBJECT = "Ethiopia: shutdown · mobile data · enforced"


@pytest.fixture
def smtp() -> Iterator[SmtpReceiver]:
    with SmtpReceiver() as receiver:
        yield receiver


@pytest.fixture
def webhook() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as receiver:
        yield receiver


def test_email_arrives_with_title_link_and_reason(smtp: SmtpReceiver) -> None:
    url = smtp.apprise_url("rights@example.org")
    AppriseNotifier(timeout_s=5).send(url, render(MESSAGE, format_for_url(url, "auto")))

    [mail] = smtp.wait_for(1)
    assert mail["Subject"] == SUBJECT
    assert smtp.recipients == [["rights@example.org"]]
    html_part = mail.get_body(("html",))
    assert html_part is not None
    html_body = html_part.get_content()
    assert "https://news.example.org/story/42" in html_body
    assert "Authorities order nationwide mobile data shutdown" in html_body
    assert "Operators cut <mark>mobile data</mark> across" in html_body


def test_webhook_gets_json_title_and_body(webhook: WebhookReceiver) -> None:
    url = webhook.apprise_url()
    AppriseNotifier(timeout_s=5).send(url, render(MESSAGE, BodyFormat.MARKDOWN))

    [post] = webhook.wait_for(1)
    assert post["title"] == SUBJECT
    assert "https://news.example.org/story/42" in post["message"]
    assert webhook.requests[0][0] == "/hook"


def test_smtp_down_raises_without_the_password() -> None:
    port = free_port()  # nothing listens here
    url = f"mailto://alerts:Sup3rS3cretPw@127.0.0.1:{port}?from=m@example.org&to=a@example.org"
    with pytest.raises(NotifyError) as caught:
        AppriseNotifier(timeout_s=2).send(url, render(MESSAGE, BodyFormat.HTML))
    text = str(caught.value)
    assert "Sup3rS3cretPw" not in text
    assert url not in text
    assert text.startswith("mailto://127.0.0.1: delivery failed")


def test_smtp_restarts_on_the_same_port(smtp: SmtpReceiver) -> None:
    url = smtp.apprise_url()
    notifier = AppriseNotifier(timeout_s=2)
    smtp.stop()
    with pytest.raises(NotifyError):
        notifier.send(url, render(MESSAGE, BodyFormat.HTML))
    smtp.start()
    notifier.send(url, render(MESSAGE, BodyFormat.HTML))
    assert len(smtp.wait_for(1)) == 1


def test_webhook_500_raises(webhook: WebhookReceiver) -> None:
    webhook.status = 500
    with pytest.raises(NotifyError, match="500"):
        AppriseNotifier(timeout_s=2).send(webhook.apprise_url(), render(MESSAGE, BodyFormat.TEXT))


def test_webhook_path_and_password_never_in_error(webhook: WebhookReceiver) -> None:
    webhook.status = 403
    url = f"json://bot:T0kenPassw0rd@127.0.0.1:{webhook.port}/secret-webhook-path-123"
    with pytest.raises(NotifyError) as caught:
        AppriseNotifier(timeout_s=2).send(url, render(MESSAGE, BodyFormat.TEXT))
    text = str(caught.value)
    assert "T0kenPassw0rd" not in text and "secret-webhook-path-123" not in text


def test_hanging_webhook_ends_within_timeout(webhook: WebhookReceiver) -> None:
    webhook.hang = True
    started = time.monotonic()
    with pytest.raises(NotifyError):
        AppriseNotifier(timeout_s=1).send(webhook.apprise_url(), render(MESSAGE, BodyFormat.TEXT))
    assert time.monotonic() - started < 5
    assert len(webhook.posts) == 1  # the request did reach the receiver


def test_invalid_url_raises_without_echoing_it() -> None:
    with pytest.raises(NotifyError, match="invalid Apprise URL") as caught:
        AppriseNotifier().send("nosuchscheme://tok3nvalue/abc", render(MESSAGE, BodyFormat.TEXT))
    assert "tok3nvalue" not in str(caught.value)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("mailtos://user:pw@smtp.example.org:587?to=a@example.org", "mailtos://smtp.example.org"),
        ("json://127.0.0.1:8080/hook/xyz", "json://127.0.0.1"),
        ("slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7F", "slack://***"),
        ("https://hooks.slack.com/services/T1/B2/C3", "https://hooks.slack.com"),
        ("discord://1234/abcdef", "discord://***"),
        ("ntfy://digital-rights-vn", "ntfy://***"),  # no server: the "host" is the topic
        ("ntfys://ntfy.example.org/rights", "ntfys://ntfy.example.org"),
        ("not a url", "<invalid url>"),
    ],
)
def test_redact_url_keeps_only_scheme_and_host(url: str, expected: str) -> None:
    assert redact_url(url) == expected


def test_scrub_removes_password_token_and_url() -> None:
    url = "slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7F"
    text = f"failed posting to {url} (token TIiajkdnlazkcOXrIdevi7F)"
    cleaned = scrub(text, url)
    assert "TIiajkdnlazkcOXrIdevi7F" not in cleaned and "T1JJ3T3L2" not in cleaned
    assert "slack://***" in cleaned


def test_scrub_removes_an_ntfy_topic_however_short() -> None:
    url = "ntfys://ntfy.example.org/vn7"
    cleaned = scrub("Failed to send ntfy notification to topic vn7 on ntfy.example.org", url)
    assert "vn7" not in cleaned and "ntfy.example.org" in cleaned
    assert "rights" not in scrub("topic rights refused", "ntfy://rights")


def test_with_timeouts_adds_cto_rto_only_when_missing() -> None:
    assert with_timeouts("json://h/p", 5) == "json://h/p?cto=5&rto=5"
    assert with_timeouts("json://h/p?rto=30", 5) == "json://h/p?rto=30&cto=5"
    assert with_timeouts("json://h?cto=1&rto=2", 5) == "json://h?cto=1&rto=2"


def test_recording_notifier_records_and_fails_on_demand() -> None:
    rendered = RenderedAlert("t", "b", BodyFormat.TEXT)
    notifier = RecordingNotifier(fail_times=1)
    with pytest.raises(NotifyError):
        notifier.send("json://host/secret", rendered)
    notifier.send("json://host/secret", rendered)
    assert notifier.titles == ["t"] and len(notifier.failed) == 1


def test_console_notifier_prints_title_and_body() -> None:
    out = io.StringIO()
    ConsoleNotifier(out).send("console://", render(MESSAGE, BodyFormat.TEXT))
    assert SUBJECT in out.getvalue() and "Authorities order" in out.getvalue()
    assert "Operators cut *mobile data* across" in out.getvalue()


def test_two_sends_at_once_never_capture_each_others_warnings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Apprise logs through one logger for the whole process: a failure's reason must be
    that target's own warning, not the one another thread's send logged meanwhile."""
    import logging
    import threading

    import apprise

    def failing_notify(self: apprise.Apprise, *args: object, **kwargs: object) -> bool:
        host = next(iter(self)).host
        logging.getLogger("apprise").warning("no answer from %s", host)
        time.sleep(0.3)  # the other send starts meanwhile
        return False

    monkeypatch.setattr(apprise.Apprise, "notify", failing_notify)
    errors: dict[str, str] = {}

    def send(host: str) -> None:
        try:
            AppriseNotifier(timeout_s=2).send(
                f"json://{host}/hook", render(MESSAGE, BodyFormat.TEXT)
            )
        except NotifyError as exc:
            errors[host] = str(exc)

    first = threading.Thread(target=send, args=("first.example",))
    second = threading.Thread(target=send, args=("second.example",))
    first.start()
    time.sleep(0.1)
    second.start()
    first.join(10)
    second.join(10)
    assert "no answer from first.example" in errors["first.example"]
    assert "second.example" not in errors["first.example"]
    assert "first.example" not in errors["second.example"]
