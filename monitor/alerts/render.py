"""Turn an AlertMessage into a title and body for one target format (pure, no I/O): the
measure in one line, what changed, the headline, the item's deciding sentence with its words
marked, source and time. Escaping and the formats themselves are in `monitor.alerts.markup`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from monitor.alerts.markup import (
    FEED_HEALTH_KINDS,
    MAX_TITLE_CHARS,
    UNKNOWN_COUNTRY,
    BodyFormat,
    RenderedAlert,
    cap_body,
    category_label,
    clip,
    escape,
    humanize_age,
    iso_time,
    safe_link,
)
from monitor.countries import country_name
from monitor.domain import AlertMessage

# The first extra line of an update that measurements earned (monitor.signals) starts so:
# it is then what changed, not the report count.
MEASUREMENTS_CHANGED = "Measurements now "


def stage_text(message: AlertMessage) -> str:
    """'lifted', or 'enforced → lifted' for an update that moved the stage."""
    if message.kind == "update" and message.previous_stage not in (None, message.stage):
        return f"{message.previous_stage} → {message.stage}"
    return message.stage


def measure_line(message: AlertMessage) -> str:
    """What, on what, at which stage: 'platform block · X (Twitter) · enforced'."""
    what = ", ".join(category_label(c) for c in message.categories) or "measure"
    parts = [what, *([", ".join(message.targets)] if message.targets else []), stage_text(message)]
    return " · ".join(parts)


def measure_summary(message: AlertMessage) -> str:
    """The measure in one line: 'Pakistan: platform block · X (Twitter) · enforced'."""
    where = country_name((message.country or "").upper()) or (message.country or "").upper()
    return f"{where or UNKNOWN_COUNTRY}: {measure_line(message)}"


def alert_title(message: AlertMessage) -> str:
    """The subject line: the measure in one line (feed-health and test alerts: their text)."""
    headline = clip(message.title, MAX_TITLE_CHARS) or "(untitled)"
    if message.kind == "feed_broken":
        return f"Feed broken: {headline}"
    if message.kind == "feed_gone":
        return f"Feed gone: {headline}"
    if message.kind == "feed_recovered":
        return f"Feed recovered: {headline}"
    if message.kind == "test":
        return f"Test alert: {headline}"
    if message.kind == "signal":
        return headline  # it says what it is: "Possible shutdown: …", "…: sources back"
    summary = clip(measure_summary(message), MAX_TITLE_CHARS)
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
    if message.extra_lines and message.extra_lines[0].startswith(MEASUREMENTS_CHANGED):
        return message.extra_lines[0]
    parts = []
    if message.previous_stage not in (None, message.stage):
        parts.append(f"stage {message.previous_stage} → {message.stage}")
    parts.append(f"now {message.other_sources + 1} reports")
    return " · ".join(parts)


def _when(message: AlertMessage, now: datetime | None) -> str | None:
    if message.published is None:
        return None
    when = iso_time(message.published)
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
        out.append(escape(text[at:start], fmt))
        out.append(opening + escape(text[start:end], fmt) + closing)
        at = end
    out.append(escape(text[at:], fmt))
    return "".join(out)


_MARK = {
    BodyFormat.HTML: ("<mark>", "</mark>"),
    BodyFormat.MARKDOWN: ("**", "**"),
    BodyFormat.TEXT: ("*", "*"),
}


def render(message: AlertMessage, fmt: BodyFormat, *, now: datetime | None = None) -> RenderedAlert:
    """Render one alert for a target; `now` enables the relative age of the story."""
    title = alert_title(message)
    link = safe_link(message.link)
    if message.kind in FEED_HEALTH_KINDS or message.kind in ("test", "signal"):
        body = _render_simple(_simple_lines(message), link, fmt)
    else:
        body = _render_measure(message, link, fmt, now)
    return RenderedAlert(title=title, body=cap_body(body, fmt), body_format=fmt)


def _simple_lines(message: AlertMessage) -> list[str]:
    """Body lines for feed-health, signal and test alerts."""
    lines = [clip(message.title, 500)]
    if message.source:
        lines.append(f"Source: {message.source}")
    lines.extend(clip(x, 300) for x in message.extra_lines)
    return lines


def _render_simple(lines: list[str], link: str | None, fmt: BodyFormat) -> str:
    if fmt is BodyFormat.HTML:
        parts = [f"<p>{escape(line, fmt)}</p>" for line in lines]
        if link:
            parts.append(f'<p><a href="{escape(link, fmt)}">{escape(link, fmt)}</a></p>')
        return "\n".join(parts)
    out = [escape(line, fmt) for line in lines]
    if link:
        out.append(link if fmt is BodyFormat.TEXT else f"<{link}>")
    return "\n".join(out)


def _render_measure(
    message: AlertMessage, link: str | None, fmt: BodyFormat, now: datetime | None
) -> str:
    """What changed, headline, the deciding sentence, source and time, link: nothing of the
    model's internals (they belong in `monitor classify` and the event's record)."""
    markup = _MARKUP[fmt]
    headline = clip(message.title, 500) or "(untitled)"
    quote = message.quote.strip()
    # Marks index the quote as stored; a quote that is the headline marks the headline.
    if quote and " ".join(quote.split()) == " ".join(message.title.split()):
        head, quote = _marked(quote, message.quote_marks, fmt), ""
    else:
        head = escape(headline, fmt)
    # The one-line summary is the title, which every target shows above the body.
    lines: list[str] = []
    changed = _changes(message)
    if changed:
        lines.append(markup.field.format(label="What changed", value=escape(changed, fmt)))
    lines += markup.opening(head, link)
    if quote:
        lines.append(markup.quote.format(_marked(quote, message.quote_marks, fmt)))
    lines.append(markup.field.format(label="Source", value=escape(_sources(message), fmt)))
    when = _when(message, now)
    if when:
        lines.append(markup.field.format(label="Published", value=escape(when, fmt)))
    extra = message.extra_lines
    if changed and extra and changed == extra[0]:
        extra = extra[1:]  # already shown as what changed
    lines += [markup.paragraph.format(escape(clip(x, 300), fmt)) for x in extra]
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
    head = f'<a href="{escape(link, BodyFormat.HTML)}">{headline}</a>' if link else headline
    return [f"<p>{head}</p>"]


def _html_closing(link: str | None) -> list[str]:
    if not link:
        return []
    escaped = escape(link, BodyFormat.HTML)
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
