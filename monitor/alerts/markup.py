"""Markup for alert targets: which format a target reads, escaping feed text for it,
clipping, safe links, labels, times, and the cap on a body's length (pure, no I/O).

Everything that came from a feed is escaped for the target format: HTML-escaped for email,
CommonMark-escaped for chat targets (Apprise translates CommonMark to Slack mrkdwn).
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from urllib.parse import urlsplit

from monitor.countries import country_name

UNKNOWN_COUNTRY = "Unknown country"
MAX_TITLE_CHARS = 250
# Slack shows ~3,000 characters of a message before folding it; Discord caps at 2,000.
MAX_CHARS = {"markdown": 3000, "text": 3000, "html": 30000}

FEED_HEALTH_KINDS = frozenset({"feed_broken", "feed_gone", "feed_recovered"})

# Apprise schemes whose targets render CommonMark (Slack mrkdwn and friends).
_MARKDOWN_SCHEMES = frozenset(
    {
        "slack",
        "discord",
        "mmost",
        "mmosts",
        "msteams",
        "workflows",
        "workflow",
        "tgram",
        "matrix",
        "matrixs",
        "rocket",
        "rockets",
        "zulip",
        "guilded",
        "revolt",
        "ntfy",
        "ntfys",
        "gotify",
        "gotifys",
    }
)
_HTML_SCHEMES = frozenset({"mailto", "mailtos", "email", "smtp", "smtps", "ses", "sendgrid"})
_MARKDOWN_HOSTS = ("hooks.slack.com", "discord.com", "discordapp.com", "api.telegram.org")

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]<>#|~])")
_SPACE = re.compile(r"\s+")


class BodyFormat(StrEnum):
    """The markup of a rendered body; values match apprise.NotifyFormat."""

    MARKDOWN = "markdown"
    HTML = "html"
    TEXT = "text"


@dataclass(frozen=True, slots=True)
class RenderedAlert:
    """A ready-to-send notification: title, body and the body's markup."""

    title: str
    body: str
    body_format: BodyFormat


def format_for_url(apprise_url: str, requested: str = "auto") -> BodyFormat:
    """Pick the body format for a target: an explicit choice, else by the URL's scheme."""
    choice = (requested or "auto").strip().lower()
    if choice != "auto":
        return BodyFormat(choice)
    scheme, _, rest = apprise_url.partition("://")
    scheme = scheme.strip().lower()
    if scheme in _MARKDOWN_SCHEMES:
        return BodyFormat.MARKDOWN
    if scheme in _HTML_SCHEMES:
        return BodyFormat.HTML
    if scheme in {"http", "https"}:
        host = (urlsplit(apprise_url).hostname or "").lower()
        if host.endswith(_MARKDOWN_HOSTS):
            return BodyFormat.MARKDOWN
    return BodyFormat.TEXT


def _fold(text: str) -> str:
    return _SPACE.sub(" ", text).strip()


def clip(text: str, limit: int) -> str:
    text = _fold(text)
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def escape(text: str, fmt: BodyFormat) -> str:
    """Escape feed-derived text for the target markup."""
    if fmt is BodyFormat.HTML:
        return html.escape(text, quote=True)
    if fmt is BodyFormat.MARKDOWN:
        return _MD_SPECIAL.sub(r"\\\1", text)
    return text


def category_label(word: str) -> str:
    return word.replace("_", " ")


def country_label(code: str | None) -> str:
    """'Viet Nam (VN)' for a known alpha-2 code, the code alone if unknown."""
    if not code:
        return UNKNOWN_COUNTRY
    code = code.strip().upper()
    name = country_name(code)
    return f"{name} ({code})" if name else code


def humanize_age(published: datetime, now: datetime) -> str:
    """'12 min ago', '3 h ago', '2 days ago'; 'just now' for the future or < 1 min."""
    seconds = (now - _as_utc(published)).total_seconds()
    if seconds < 60:
        return "just now"
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes} min ago"
    hours = minutes // 60
    if hours < 48:
        return f"{hours} h ago"
    return f"{hours // 24} days ago"


def _as_utc(when: datetime) -> datetime:
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def iso_time(when: datetime) -> str:
    return _as_utc(when).strftime("%Y-%m-%d %H:%M UTC")


# Characters that would end a Markdown link (<...>, [..](...)) or break it across lines,
# percent-encoded: the link still leads to the same address.
_LINK_BREAKERS = str.maketrans({c: f"%{ord(c):02X}" for c in "<>() \n\r\t"})


def safe_link(link: str | None) -> str | None:
    """Only http(s) links are shown as links; anything else is dropped."""
    if not link:
        return None
    link = link.strip()
    if urlsplit(link).scheme.lower() not in {"http", "https"}:
        return None
    return link.translate(_LINK_BREAKERS)


def cap_body(body: str, fmt: BodyFormat) -> str:
    """Cut an over-long body at a line boundary and say so (HTML is cut between tags)."""
    limit = MAX_CHARS[fmt.value]
    if len(body) <= limit:
        return body
    note = "… (truncated)"
    wrapped = f"<p>{note}</p>" if fmt is BodyFormat.HTML else note
    keep: list[str] = []
    used = len(wrapped) + 1
    for line in body.split("\n"):
        if used + len(line) + 1 > limit:
            break
        keep.append(line)
        used += len(line) + 1
    if fmt is BodyFormat.HTML:
        still_open = sum(ln.count("<ul>") - ln.count("</ul>") for ln in keep)
        keep.extend(["</ul>"] * max(still_open, 0))
    if not keep:  # a single giant line: hard cut (never for HTML, whose lines are short)
        return body[: limit - len(note) - 1] + "\n" + note
    return "\n".join([*keep, wrapped])
