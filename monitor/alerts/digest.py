"""Digests: one message listing a period's events, grouped by country, one line per event
with its stage now and how many report it (pure, no I/O)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC

from monitor.alerts.markup import (
    UNKNOWN_COUNTRY,
    BodyFormat,
    RenderedAlert,
    cap_body,
    clip,
    country_label,
    escape,
    safe_link,
)
from monitor.alerts.render import measure_line
from monitor.domain import AlertMessage


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
    reports = event.other_sources + 1
    meta = f"{event.source}, {reports} report{'s' if reports != 1 else ''}"
    if event.published is not None:
        meta += f", {event.published.astimezone(UTC):%d %b %H:%M} UTC"
    summary = measure_line(event)
    headline = clip(event.title, 200) or "(untitled)"
    link = safe_link(event.link)
    if fmt is BodyFormat.HTML:
        head = escape(headline, fmt)
        if link:
            head = f'<a href="{escape(link, fmt)}">{head}</a>'
        small = f"<small>({escape(meta, fmt)})</small>"
        return f"<li><strong>{escape(summary, fmt)}</strong>: {head} {small}</li>"
    if fmt is BodyFormat.MARKDOWN:
        head = escape(headline, fmt)
        if link:
            head = f"[{head}]({link})"
        return f"• **{escape(summary, fmt)}**: {head} ({escape(meta, fmt)})"
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
            lines.append(f"<p><strong>{escape(label, fmt)}</strong></p>")
            lines.append("<ul>")
            lines += [_digest_line(e, fmt) for e in group]
            lines.append("</ul>")
        else:
            lines.append(f"**{escape(label, fmt)}**" if fmt is BodyFormat.MARKDOWN else label)
            lines += [_digest_line(e, fmt) for e in group]
    if not events:
        lines.append("<p>No new measures.</p>" if fmt is BodyFormat.HTML else "No new measures.")
    return RenderedAlert(title=title, body=cap_body("\n".join(lines), fmt), body_format=fmt)
