"""Deliver rendered alerts: Apprise for real targets, plus recording and console notifiers.

Apprise's `notify()` returns a falsy result instead of raising (STYLE.md §6), so
`AppriseNotifier` checks the result, captures Apprise's own warnings with
`apprise.LogCapture`, and raises `NotifyError` with that reason. Apprise URLs carry
secrets (SMTP passwords, webhook tokens), so nothing raised or logged here contains the
URL: only `redact_url(url)` and scrubbed text.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
from dataclasses import dataclass, field
from typing import Protocol, TextIO
from urllib.parse import parse_qsl, unquote, urlsplit

import apprise

from monitor.alerts.markup import RenderedAlert
from monitor.config.values import TOPIC_SCHEMES, shown_host
from monitor.errors import NotifyError

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 10.0
MAX_REASON_CHARS = 400

# Query keys that never carry secrets; all other query values are scrubbed from messages.
_HARMLESS_KEYS = frozenset({"format", "overflow", "cto", "rto", "verify", "mode", "method"})
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"<>]+")
_MIN_SECRET_CHARS = 3


class Notifier(Protocol):
    """Something that delivers one rendered alert to one target URL."""

    def send(self, url: str, rendered: RenderedAlert) -> None:
        """Deliver, or raise NotifyError with a message free of secrets."""
        ...


def _scheme(url: str) -> str:
    head, sep, _ = url.partition("://")
    return head.strip().lower() if sep and head.strip().isascii() else ""


def redact_url(url: str) -> str:
    """Show only scheme and host ('mailto://smtp.example.org', 'slack://***'): safe to log."""
    scheme = _scheme(url)
    if not scheme:
        return "<invalid url>"
    host = shown_host(scheme, url)
    return f"{scheme}://{host}" if host else f"{scheme}://***"


def _secret_parts(url: str) -> set[str]:
    """Fragments of `url` that must never appear in a message."""
    parts = {url.split("?", 1)[0]}
    try:
        split = urlsplit(url)
        password, username, netloc = split.password, split.username, split.netloc
        path, query = split.path, split.query
    except ValueError:
        return {p for p in parts if p}
    if password:
        parts.add(password)
    if "@" in netloc:
        parts.add(netloc.rsplit("@", 1)[0])
    scheme = _scheme(url)
    if shown_host(scheme, url) is None:
        parts.update(p for p in (username, netloc, split.hostname, path.strip("/")) if p)
        parts.update(seg for seg in path.split("/") if seg)
    elif path.strip("/"):
        parts.add(path)
        # Short segments are often harmless words (json://host/hook), but a topic is a secret.
        shortest = 1 if scheme in TOPIC_SCHEMES else 8
        parts.update(seg for seg in path.split("/") if len(seg) >= shortest)
    for key, value in parse_qsl(query, keep_blank_values=False):
        if key.lower() not in _HARMLESS_KEYS:
            parts.add(value)
    parts |= {unquote(p) for p in parts}
    return {p for p in parts if len(p) >= _MIN_SECRET_CHARS}


def scrub(text: str, *urls: str) -> str:
    """Remove the URLs, their credentials, tokens and webhook paths from `text`."""
    secrets: set[str] = set()
    for url in sorted(urls, key=len, reverse=True):
        text = text.replace(url, redact_url(url))
        secrets |= _secret_parts(url)
    for secret in sorted(secrets, key=len, reverse=True):
        text = re.sub(re.escape(secret), "***", text, flags=re.IGNORECASE)
    return _URL_IN_TEXT.sub(lambda m: redact_url(m.group(0)), text)


def with_timeouts(url: str, timeout_s: float) -> str:
    """Add Apprise's socket connect/read timeouts (`cto`, `rto`) unless the URL sets them."""
    query = url.split("?", 1)[1] if "?" in url else ""
    keys = {key.lower() for key, _ in parse_qsl(query, keep_blank_values=True)}
    extra = [f"{key}={timeout_s:g}" for key in ("cto", "rto") if key not in keys]
    if not extra:
        return url
    return url + ("&" if "?" in url else "?") + "&".join(extra)


def _reason(captured: str, *urls: str) -> str:
    """The last few distinct warning lines Apprise logged, scrubbed and capped."""
    lines: list[str] = []
    for raw in captured.splitlines():
        line = raw.strip()
        if line and line not in lines:
            lines.append(line)
    text = scrub("; ".join(lines[-3:]), *urls)
    return text if len(text) <= MAX_REASON_CHARS else text[: MAX_REASON_CHARS - 1] + "…"


# Apprise logs through one process-wide logger, and LogCapture listens to all of it: two sends
# at once (the delivery and digest jobs) would each capture the other's warnings, and one
# route's error text would land in another's record. So captured sends take turns.
_CAPTURE_TURN = threading.Lock()


class AppriseNotifier:
    """Sends through Apprise: a fresh Apprise object per send, bounded in time."""

    def __init__(self, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        if timeout_s <= 0:
            raise ValueError("timeout_s must be positive")
        self.timeout_s = timeout_s

    def send(self, url: str, rendered: RenderedAlert) -> None:
        """Deliver one alert; raise NotifyError (secret-free) if the target refused it."""
        where = redact_url(url)
        target = with_timeouts(url.strip(), self.timeout_s)
        app = apprise.Apprise()
        try:
            capture = apprise.LogCapture(level=logging.WARNING, fmt="%(message)s")  # type: ignore[no-untyped-call]
            with _CAPTURE_TURN, capture as captured:
                added = app.add(target)
                result = (
                    app.notify(
                        body=rendered.body,
                        title=rendered.title,
                        body_format=apprise.NotifyFormat(rendered.body_format.value),
                        # Whole-call bound on top of the per-socket cto/rto timeouts.
                        timeout=self.timeout_s * 3,
                    )
                    if added
                    else None
                )
                log_text = str(captured.getvalue())
        except Exception as exc:  # Apprise or a plugin raised instead of returning False
            # `from None`: the original exception may quote the URL with its secrets.
            reason = scrub(f"{type(exc).__name__}: {exc}", url, target)
            raise NotifyError(f"{where}: delivery error: {reason}") from None
        if not added:
            reason = _reason(log_text, url, target) or "Apprise does not recognise this URL"
            raise NotifyError(f"{where}: invalid Apprise URL: {reason}")
        if not result:
            status = getattr(getattr(result, "status", None), "name", "FAILURE")
            reason = _reason(log_text, url, target) or f"Apprise reported {status}"
            raise NotifyError(f"{where}: delivery failed: {reason}")
        logger.debug("alert delivered to %s: %s", where, rendered.title)


@dataclass
class RecordingNotifier:
    """Test double: records every send; set `fail` (or `fail_times`) to make sends fail."""

    fail: bool = False
    fail_times: int = 0  # fail this many upcoming sends, then succeed
    sent: list[tuple[str, RenderedAlert]] = field(default_factory=list)
    failed: list[tuple[str, RenderedAlert]] = field(default_factory=list)

    def send(self, url: str, rendered: RenderedAlert) -> None:
        """Record the send, or raise NotifyError when told to fail."""
        if self.fail or self.fail_times > 0:
            self.fail_times = max(0, self.fail_times - 1)
            self.failed.append((url, rendered))
            raise NotifyError(f"{redact_url(url)}: delivery failed: told to fail")
        self.sent.append((url, rendered))

    @property
    def titles(self) -> list[str]:
        """Titles of the successful sends, in order."""
        return [r.title for _, r in self.sent]


class ConsoleNotifier:
    """Prints alerts to a stream (stdout by default): the fallback when no route exists."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream

    def send(self, url: str, rendered: RenderedAlert) -> None:
        """Write the title and body, framed, and log that an alert went to the console."""
        stream = self._stream if self._stream is not None else sys.stdout
        rule = "-" * 72
        print(f"{rule}\n{rendered.title}\n\n{rendered.body}\n{rule}", file=stream, flush=True)
        logger.info("alert printed to console: %s", rendered.title)
