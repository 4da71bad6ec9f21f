"""`monitor items` and `monitor events`: what was collected and the measures found in it."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import click
from sqlalchemy import select

from monitor.cli.common import CliContext, parse_since, pass_ctx, session_for
from monitor.signals.corroborate import latest_verdicts
from monitor.signals.verdicts import SERVICE_NAMES
from monitor.store.models import AlertRow, AssessmentRow, EventRow, FeedRow, ItemRow


@click.group()
def items() -> None:
    """What was collected."""


@items.command("list")
@click.option("--feed", "feed_name", help="Only items first seen in this feed.")
@click.option("--flagged", is_flag=True, help="Only items the classifier flagged.")
@click.option("--since", help="A duration (2d, 6h) or an ISO date.")
@click.option("--limit", default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def items_list(
    obj: CliContext,
    feed_name: str | None,
    flagged: bool,
    since: str | None,
    limit: int,
    as_json: bool,
) -> None:
    """List stored items, newest first, with their verdict."""
    with session_for(obj) as session:
        query = (
            select(ItemRow, AssessmentRow, FeedRow.name)
            .join(AssessmentRow, AssessmentRow.item_id == ItemRow.id, isouter=True)
            .join(FeedRow, FeedRow.id == ItemRow.feed_id)
            .order_by(ItemRow.fetched_at.desc(), ItemRow.id.desc())
            .limit(limit)
        )
        if feed_name:
            query = query.where(FeedRow.name == feed_name)
        if flagged:
            query = query.where(AssessmentRow.relevant.is_(True))
        when = parse_since(since)
        if when is not None:
            query = query.where(ItemRow.fetched_at >= when)
        for item, verdict, feed in session.execute(query):
            record = {
                "id": item.id,
                "feed": feed,
                "title": item.title,
                "url": item.url,
                "published": item.published.isoformat(),
                "relevant": verdict.relevant if verdict else None,
                "score": round(verdict.score, 3) if verdict else None,
                "categories": verdict.categories if verdict else [],
                "country": verdict.country if verdict else None,
                "stage": verdict.stage if verdict else None,
                "event_id": item.event_id,
                "sources": item.source_count,
            }
            if as_json:
                click.echo(json.dumps(record, ensure_ascii=False))
            else:
                mark = "!" if record["relevant"] else " "
                click.echo(f"{mark} #{item.id:<6} {feed:24.24} {record['score']}  {item.title}")


@click.group()
def events() -> None:
    """Measures: items grouped into events."""


@events.command("list")
@click.option("--since", help="A duration (7d) or an ISO date.")
@click.option("--country", help="Alpha-2 code.")
@click.option("--category", help="A taxonomy category.")
@click.option("--limit", default=50, show_default=True)
@pass_ctx
def events_list(
    obj: CliContext, since: str | None, country: str | None, category: str | None, limit: int
) -> None:
    """List events, most recently seen first."""
    with session_for(obj) as session:
        query = select(EventRow).order_by(EventRow.last_seen.desc()).limit(limit * 4)
        when = parse_since(since)
        if when is not None:
            query = query.where(EventRow.last_seen >= when)
        if country:
            query = query.where(EventRow.country == country.upper())
        shown = 0
        for row in session.scalars(query):
            if category and category not in row.categories:
                continue
            targets = ",".join(t.partition(":")[2] for t in row.targets) or "-"
            click.echo(
                f"#{row.id:<5} {row.country or '--'}  {row.stage:9} items={row.item_count:<3} "
                f"{','.join(row.categories):30.30} {targets:18.18}  {row.title}"
            )
            shown += 1
            if shown >= limit:
                break


@events.command("show")
@click.argument("event_id", type=int)
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def events_show(obj: CliContext, event_id: int, as_json: bool) -> None:
    """One event's record: its identity, every report with the classifier's reasons (rules,
    model features), and the alerts it sent."""
    with session_for(obj) as session:
        event = session.get(EventRow, event_id)
        if event is None:
            raise click.ClickException(f"no event #{event_id}")
        reports: list[tuple[ItemRow, AssessmentRow | None, str]] = [
            (item, verdict, feed)
            for item, verdict, feed in session.execute(
                select(ItemRow, AssessmentRow, FeedRow.name)
                .join(AssessmentRow, AssessmentRow.item_id == ItemRow.id, isouter=True)
                .join(FeedRow, FeedRow.id == ItemRow.feed_id)
                .where(ItemRow.event_id == event_id)
                .order_by(ItemRow.published, ItemRow.id)
            )
        ]
        alerts = session.scalars(
            select(AlertRow).where(AlertRow.event_id == event_id).order_by(AlertRow.id)
        ).all()
        record = _event_record(event, reports, alerts)
        measured = latest_verdicts(session, event_id)
        record["measurements"] = [
            {
                "service": m.service,
                "verdict": m.verdict,
                "before_report": m.before_report,
                "summary": m.summary,
                "figures": m.figures,
                "link": m.link,
                "attribution": m.attribution,
                "checked_at": _iso(m.checked_at),
                "next_check_at": _iso(m.next_check_at),
            }
            for m in measured
        ]
    # The daemon stores rules, stage and country reasons; the model's features are read
    # again from each report's text, with the model in use now.
    from monitor.classify import Classifier
    from monitor.domain import ItemText

    classifier = Classifier.load()
    for report in record["reports"]:
        again = classifier.assess(ItemText(report["title"], report.pop("summary")))
        report["model_features"] = [r for r in again.evidence if r.startswith("model features")]
    if as_json:
        click.echo(json.dumps(record, ensure_ascii=False, indent=2))
        return
    click.echo(
        f"event #{event.id}: {event.country or '--'} · {', '.join(event.categories)} · "
        f"targets: {', '.join(event.targets) or 'none named'} · stage {event.stage} "
        f"(since {_iso(event.stage_changed_at)})"
    )
    click.echo(f"  seen {_iso(event.first_seen)} .. {_iso(event.last_seen)}, "
               f"{event.item_count} items")  # fmt: skip
    for (item, verdict, feed), report in zip(reports, record["reports"], strict=True):
        click.echo(f"  - {_iso(item.published)}  {feed}: {item.title}")
        if verdict is not None:
            click.echo(f"    stage {verdict.stage}, score {verdict.score:.3f}, terms: "
                       f"{', '.join(verdict.matched_terms[:8]) or '-'}")  # fmt: skip
            for reason in [*verdict.evidence[:6], *report["model_features"]]:
                click.echo(f"      {reason}")
    for alert in alerts:
        click.echo(f"  alert {alert.kind} to {alert.route}: {alert.status} "
                   f"{_iso(alert.sent_at) or ''}")  # fmt: skip
    if record["measurements"]:
        click.echo("  measurements:")
    for m in record["measurements"]:
        name = SERVICE_NAMES.get(m["service"], m["service"])
        click.echo(f"    {name}: {m['verdict']} - {m['summary']}")
        nxt = f", next check {m['next_check_at']}" if m["next_check_at"] else ""
        click.echo(f"      checked {m['checked_at']}{nxt}; {m['attribution']}")
        if m["link"]:
            click.echo(f"      {m['link']}")


def _event_record(
    event: EventRow,
    reports: Sequence[tuple[ItemRow, AssessmentRow | None, str]],
    alerts: Sequence[AlertRow],
) -> dict[str, Any]:
    return {
        "id": event.id,
        "country": event.country,
        "categories": event.categories,
        "targets": event.targets,
        "stage": event.stage,
        "stage_changed_at": _iso(event.stage_changed_at),
        "first_seen": _iso(event.first_seen),
        "last_seen": _iso(event.last_seen),
        "items": event.item_count,
        "title": event.title,
        "reports": [
            {
                "item_id": item.id,
                "feed": feed,
                "published": _iso(item.published),
                "title": item.title,
                "url": item.url,
                "summary": item.summary,
                "stage": verdict.stage if verdict else None,
                "score": round(verdict.score, 3) if verdict else None,
                "matched_terms": verdict.matched_terms if verdict else [],
                "evidence": verdict.evidence if verdict else [],
            }
            for item, verdict, feed in reports
        ],
        "alerts": [
            {"route": a.route, "kind": a.kind, "status": a.status, "sent_at": _iso(a.sent_at)}
            for a in alerts
        ],
    }


def _iso(when: datetime | None) -> str | None:
    return when.isoformat() if when is not None else None
