"""An event's stage timeline, replayed from its reports with the recorder's own rule.

The recorder keeps only an event's current stage; the steps that led there follow from its
reports, taken in the order the daemon stored them, through `stage_move` (the same pure
function that moved the stage then). Each step is a revision: the event page draws them as
its timeline, and feeds out publish one entry per announced step.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from monitor.events.identity import stage_move
from monitor.store.models import AssessmentRow, EventRow, FeedRow, ItemRow


@dataclass(frozen=True, slots=True)
class StageStep:
    """The event reached `stage` at `at`, moved there by one report (None: no report kept)."""

    number: int  # 0: the event opened
    stage: str
    at: datetime
    announced: bool  # an alert went out for it (quiet moves settle "ordered" into "in force")
    item_id: int | None
    item_title: str | None
    item_url: str | None
    feed: str | None


@dataclass(frozen=True, slots=True)
class _Report:
    item_id: int
    title: str
    url: str | None
    feed: str
    published: datetime
    fetched_at: datetime
    stage: str


def replay(event: EventRow, reports: Sequence[_Report]) -> list[StageStep]:
    """The steps of one event (pure): first report opens it, then each stage move."""
    ordered = sorted(reports, key=lambda r: (r.fetched_at, r.item_id))
    steps: list[StageStep] = []
    if ordered:
        first = ordered[0]
        steps.append(_step(0, first.stage, first.fetched_at, True, first))
        stage, since = first.stage, first.published
        for report in ordered[1:]:
            move = stage_move(
                stage,
                report.stage,
                event_first_seen=event.first_seen,
                stage_since=since,
                published=report.published,
            )
            if move is None:
                continue
            steps.append(_step(len(steps), move.stage, report.fetched_at, move.alert, report))
            stage, since = move.stage, report.published
    if not steps or steps[-1].stage != event.stage:
        # Reports pruned by retention, or an analyst's correction: the stored stage wins.
        at = event.stage_changed_at or event.last_seen
        steps.append(StageStep(len(steps), event.stage, at, True, None, None, None, None))
    return steps


def _step(number: int, stage: str, at: datetime, announced: bool, report: _Report) -> StageStep:
    return StageStep(
        number=number,
        stage=stage,
        at=at,
        announced=announced,
        item_id=report.item_id,
        item_title=report.title,
        item_url=report.url,
        feed=report.feed,
    )


def timelines(session: Session, events: Iterable[EventRow]) -> dict[int, list[StageStep]]:
    """The steps of several events, with one query for all their reports."""
    by_id = {event.id: event for event in events}
    if not by_id:
        return {}
    rows = session.execute(
        select(
            ItemRow.event_id,
            ItemRow.id,
            ItemRow.title,
            ItemRow.url,
            FeedRow.name,
            ItemRow.published,
            ItemRow.fetched_at,
            AssessmentRow.stage,
        )
        .join(AssessmentRow, AssessmentRow.item_id == ItemRow.id)
        .join(FeedRow, FeedRow.id == ItemRow.feed_id)
        .where(ItemRow.event_id.in_(list(by_id)))
    )
    reports: dict[int, list[_Report]] = defaultdict(list)
    for event_id, item_id, title, url, feed, published, fetched_at, stage in rows:
        if event_id is None:
            continue
        reports[event_id].append(_Report(item_id, title, url, feed, published, fetched_at, stage))
    return {event_id: replay(event, reports[event_id]) for event_id, event in by_id.items()}


def timeline(session: Session, event: EventRow) -> list[StageStep]:
    return timelines(session, [event])[event.id]
