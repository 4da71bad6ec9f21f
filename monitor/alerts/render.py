"""Turn an AlertMessage into a title and body for one target format (pure, no I/O).

Everything that came from a feed is escaped for the target format: HTML-escaped for email,
CommonMark-escaped for chat targets (Apprise translates CommonMark to Slack mrkdwn).
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from urllib.parse import urlsplit

# COUNTRY_NAMES moved to monitor.countries; re-exported so existing imports keep working.
from monitor.countries import COUNTRY_NAMES as COUNTRY_NAMES
from monitor.countries import country_name
from monitor.domain import AlertMessage

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


# ---------------------------------------------------------------- small helpers


def _fold(text: str) -> str:
    return _SPACE.sub(" ", text).strip()


def _clip(text: str, limit: int) -> str:
    text = _fold(text)
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _esc(text: str, fmt: BodyFormat) -> str:
    """Escape feed-derived text for the target markup."""
    if fmt is BodyFormat.HTML:
        return html.escape(text, quote=True)
    if fmt is BodyFormat.MARKDOWN:
        return _MD_SPECIAL.sub(r"\\\1", text)
    return text


def _label(word: str) -> str:
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


def _iso(when: datetime) -> str:
    return _as_utc(when).strftime("%Y-%m-%d %H:%M UTC")


# Characters that would end a Markdown link (<...>, [..](...)) or break it across lines,
# percent-encoded: the link still leads to the same address.
_LINK_BREAKERS = str.maketrans({c: f"%{ord(c):02X}" for c in "<>() \n\r\t"})


def _safe_link(link: str | None) -> str | None:
    """Only http(s) links are shown as links; anything else is dropped."""
    if not link:
        return None
    link = link.strip()
    if urlsplit(link).scheme.lower() not in {"http", "https"}:
        return None
    return link.translate(_LINK_BREAKERS)


# ---------------------------------------------------------------- the alert


def stage_text(message: AlertMessage) -> str:
    """'lifted', or 'enforced → lifted' for an update that moved the stage."""
    if message.kind == "update" and message.previous_stage not in (None, message.stage):
        return f"{message.previous_stage} → {message.stage}"
    return message.stage


def measure_summary(message: AlertMessage) -> str:
    """The measure in one line: 'Pakistan: platform block · X (Twitter) · enforced'."""
    where = country_name((message.country or "").upper()) or (message.country or "").upper()
    what = ", ".join(_label(c) for c in message.categories) or "measure"
    parts = [what, *([", ".join(message.targets)] if message.targets else []), stage_text(message)]
    return f"{where or UNKNOWN_COUNTRY}: " + " · ".join(parts)


def alert_title(message: AlertMessage) -> str:
    """The subject line: the measure in one line (feed-health and test alerts: their text)."""
    headline = _clip(message.title, MAX_TITLE_CHARS) or "(untitled)"
    if message.kind == "feed_broken":
        return f"Feed broken: {headline}"
    if message.kind == "feed_gone":
        return f"Feed gone: {headline}"
    if message.kind == "feed_recovered":
        return f"Feed recovered: {headline}"
    if message.kind == "test":
        return f"Test alert: {headline}"
    summary = _clip(measure_summary(message), MAX_TITLE_CHARS)
    return f"Update · {summary}" if message.kind == "update" else summary


def _sources(message: AlertMessage) -> str:
    source = message.source or "unknown source"
    if message.other_sources > 0:
        plural = "s" if message.other_sources != 1 else ""
        source += f" · {message.other_sources} other report{plural}"
    return source


def _changes(message: AlertMessage) -> str | None:
    """What an update changed, in words: 'stage enforced → lifted · now 5 reports'."""
    if message.kind != "update":
        return None
    parts = []
    if message.previous_stage not in (None, message.stage):
        parts.append(f"stage {message.previous_stage} → {message.stage}")
    parts.append(f"now {message.other_sources + 1} reports")
    return " · ".join(parts)


def _when(message: AlertMessage, now: datetime | None) -> str | None:
    if message.published is None:
        return None
    when = _iso(message.published)
    if now is not None:
        when += f" ({humanize_age(message.published, now)})"
    return when


def _marked(text: str, marks: Sequence[tuple[int, int]], fmt: BodyFormat) -> str:
    """The text escaped for the target, its deciding words marked in the target's markup."""
    opening, closing = _MARK[fmt]
    out: list[str] = []
    at = 0
    for start, end in sorted(marks):
        if start < at or end > len(text) or start >= end:
            continue  # a stored mark that no longer fits the text is dropped, not trusted
        out.append(_esc(text[at:start], fmt))
        out.append(opening + _esc(text[start:end], fmt) + closing)
        at = end
    out.append(_esc(text[at:], fmt))
    return "".join(out)


_MARK = {
    BodyFormat.HTML: ("<mark>", "</mark>"),
    BodyFormat.MARKDOWN: ("**", "**"),
    BodyFormat.TEXT: ("*", "*"),
}


def render(message: AlertMessage, fmt: BodyFormat, *, now: datetime | None = None) -> RenderedAlert:
    """Render one alert for a target; `now` enables the relative age of the story."""
    title = alert_title(message)
    link = _safe_link(message.link)
    if message.kind in FEED_HEALTH_KINDS or message.kind == "test":
        body = _render_simple(_simple_lines(message), link, fmt)
    else:
        body = _render_measure(message, link, fmt, now)
    return RenderedAlert(title=title, body=_cap(body, fmt), body_format=fmt)


def _simple_lines(message: AlertMessage) -> list[str]:
    """Body lines for feed-health and test alerts."""
    lines = [_clip(message.title, 500)]
    if message.source:
        lines.append(f"Source: {message.source}")
    lines.extend(_clip(x, 300) for x in message.extra_lines)
    return lines


def _render_simple(lines: list[str], link: str | None, fmt: BodyFormat) -> str:
    if fmt is BodyFormat.HTML:
        parts = [f"<p>{_esc(line, fmt)}</p>" for line in lines]
        if link:
            parts.append(f'<p><a href="{_esc(link, fmt)}">{_esc(link, fmt)}</a></p>')
        return "\n".join(parts)
    out = [_esc(line, fmt) for line in lines]
    if link:
        out.append(link if fmt is BodyFormat.TEXT else f"<{link}>")
    return "\n".join(out)


def _render_measure(
    message: AlertMessage, link: str | None, fmt: BodyFormat, now: datetime | None
) -> str:
    """What changed, headline, the deciding sentence, source and time, link: nothing of the
    model's internals (they belong in `monitor classify` and the event's record)."""
    markup = _MARKUP[fmt]
    headline = _clip(message.title, 500) or "(untitled)"
    quote = message.quote.strip()
    # Marks index the quote as stored; a quote that is the headline marks the headline.
    if quote and " ".join(quote.split()) == " ".join(message.title.split()):
        head, quote = _marked(quote, message.quote_marks, fmt), ""
    else:
        head = _esc(headline, fmt)
    # The one-line summary is the title, which every target shows above the body.
    lines: list[str] = []
    changed = _changes(message)
    if changed:
        lines.append(markup.field.format(label="What changed", value=_esc(changed, fmt)))
    lines += markup.opening(head, link)
    if quote:
        lines.append(markup.quote.format(_marked(quote, message.quote_marks, fmt)))
    lines.append(markup.field.format(label="Source", value=_esc(_sources(message), fmt)))
    when = _when(message, now)
    if when:
        lines.append(markup.field.format(label="Published", value=_esc(when, fmt)))
    lines += [markup.paragraph.format(_esc(_clip(x, 300), fmt)) for x in message.extra_lines]
    lines += markup.closing(link)
    return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class _Markup:
    """How one body format spells the parts of a measure alert (text arrives escaped)."""

    opening: Callable[[str, str | None], list[str]]  # (headline, link) -> lines
    quote: str
    field: str  # "{label}" and "{value}"
    paragraph: str
    closing: Callable[[str | None], list[str]]  # link -> last lines


def _html_opening(headline: str, link: str | None) -> list[str]:
    head = f'<a href="{_esc(link, BodyFormat.HTML)}">{headline}</a>' if link else headline
    return [f"<p>{head}</p>"]


def _html_closing(link: str | None) -> list[str]:
    if not link:
        return []
    escaped = _esc(link, BodyFormat.HTML)
    return [f'<p>Link: <a href="{escaped}">{escaped}</a></p>']


_MARKUP = {
    BodyFormat.HTML: _Markup(
        opening=_html_opening,
        quote="<blockquote>{}</blockquote>",
        field="<p><strong>{label}:</strong> {value}</p>",
        paragraph="<p>{}</p>",
        closing=_html_closing,
    ),
    BodyFormat.MARKDOWN: _Markup(
        opening=lambda headline, link: [f"[{headline}]({link})" if link else headline],
        quote="> {}",
        field="{label}: {value}",
        paragraph="{}",
        closing=lambda link: [f"<{link}>"] if link else [],
    ),
    BodyFormat.TEXT: _Markup(
        opening=lambda headline, link: [headline],
        quote="“{}”",
        field="{label}: {value}",
        paragraph="{}",
        closing=lambda link: [link] if link else [],
    ),
}


def _cap(body: str, fmt: BodyFormat) -> str:
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


# ---------------------------------------------------------------- digests


@dataclass(frozen=True, slots=True)
class EventNow:
    """An event as it stands when a digest is written."""

    stage: str
    reports: int


def collapse_by_event(
    queued: Sequence[tuple[int | None, AlertMessage]], current: Mapping[int, EventNow]
) -> list[AlertMessage]:
    """One digest entry per event, in the order events first appear: its latest report, its
    stage now (and the stage it had when the period began, if it moved), how many report it.

    Alerts that belong to no event (or to one no longer stored) are kept as they are.
    """
    groups: dict[int, list[AlertMessage]] = {}
    order: list[int | AlertMessage] = []
    for event_id, message in queued:
        if event_id is None or event_id not in current:
            order.append(message)
            continue
        if event_id not in groups:
            groups[event_id] = []
            order.append(event_id)
        groups[event_id].append(message)
    out: list[AlertMessage] = []
    for entry in order:
        if isinstance(entry, AlertMessage):
            out.append(entry)
            continue
        first, latest, now = groups[entry][0], groups[entry][-1], current[entry]
        began = first.previous_stage if first.kind == "update" else first.stage
        moved = began is not None and began != now.stage
        out.append(
            replace(
                latest,
                kind="update" if moved else first.kind,
                stage=now.stage,
                previous_stage=began if moved else None,
                other_sources=max(now.reports - 1, 0),
            )
        )
    return out


def group_by_country(events: Sequence[AlertMessage]) -> list[tuple[str, list[AlertMessage]]]:
    """Events grouped by country label, sorted by label, 'Unknown country' last."""
    groups: dict[str, list[AlertMessage]] = {}
    for event in events:
        groups.setdefault(country_label(event.country), []).append(event)
    known = sorted(k for k in groups if k != UNKNOWN_COUNTRY)
    order = known + ([UNKNOWN_COUNTRY] if UNKNOWN_COUNTRY in groups else [])
    return [(k, groups[k]) for k in order]


def _digest_line(event: AlertMessage, fmt: BodyFormat) -> str:
    """One event: what, target and stage, how many report it, the headline and its link."""
    what = ", ".join(_label(c) for c in event.categories) or "measure"
    parts = [what, *([", ".join(event.targets)] if event.targets else []), stage_text(event)]
    reports = event.other_sources + 1
    meta = f"{event.source}, {reports} report{'s' if reports != 1 else ''}"
    if event.published is not None:
        meta += f", {event.published.astimezone(UTC):%d %b %H:%M} UTC"
    summary = " · ".join(parts)
    headline = _clip(event.title, 200) or "(untitled)"
    link = _safe_link(event.link)
    if fmt is BodyFormat.HTML:
        head = _esc(headline, fmt)
        if link:
            head = f'<a href="{_esc(link, fmt)}">{head}</a>'
        small = f"<small>({_esc(meta, fmt)})</small>"
        return f"<li><strong>{_esc(summary, fmt)}</strong>: {head} {small}</li>"
    if fmt is BodyFormat.MARKDOWN:
        head = _esc(headline, fmt)
        if link:
            head = f"[{head}]({link})"
        return f"• **{_esc(summary, fmt)}**: {head} ({_esc(meta, fmt)})"
    return f"- {summary}: {headline} ({meta})" + (f" {link}" if link else "")


def render_digest(
    route_name: str,
    events: Sequence[AlertMessage],
    fmt: BodyFormat,
    *,
    period_label: str,
) -> RenderedAlert:
    """One message listing many events, grouped by country, one line per event."""
    count = len(events)
    title = f"Digest for {route_name}: {count} measure{'s' if count != 1 else ''} ({period_label})"
    lines: list[str] = []
    for label, group in group_by_country(events):
        if fmt is BodyFormat.HTML:
            lines.append(f"<p><strong>{_esc(label, fmt)}</strong></p>")
            lines.append("<ul>")
            lines += [_digest_line(e, fmt) for e in group]
            lines.append("</ul>")
        else:
            lines.append(f"**{_esc(label, fmt)}**" if fmt is BodyFormat.MARKDOWN else label)
            lines += [_digest_line(e, fmt) for e in group]
    if not events:
        lines.append("<p>No new measures.</p>" if fmt is BodyFormat.HTML else "No new measures.")
    return RenderedAlert(title=title, body=_cap("\n".join(lines), fmt), body_format=fmt)
