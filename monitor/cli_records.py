"""`monitor items` and `monitor events`: what was collected and the measures found in it."""

from __future__ import annotations

import json

import click
from sqlalchemy import select

from monitor.cli_common import CliContext, parse_since, pass_ctx, session_for
from monitor.store.models import AssessmentRow, EventRow, FeedRow, ItemRow


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
            click.echo(
                f"#{row.id:<5} {row.country or '--'}  {row.stage:9} items={row.item_count:<3} "
                f"{','.join(row.categories):30.30}  {row.title}"
            )
            shown += 1
            if shown >= limit:
                break
