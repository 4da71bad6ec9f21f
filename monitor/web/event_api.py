"""The events JSON API under /api/v1: what the event pages show, for scripts and partners.

Response models are pydantic (they make the OpenAPI document); they are filled from the
same `event_queries` dataclasses the pages render. Lists page by cursor: `{"items": [...],
"next": "..."}` plus a `Link: <...>; rel="next"` header, no totals (they cost a full count).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from monitor.config.schema import parse_duration
from monitor.store import feedback
from monitor.store.feedback import EventCorrection
from monitor.store.tokens import TokenInfo
from monitor.web import country_queries, event_queries, overview_queries
from monitor.web.auth import DbSession, api_user, web_context
from monitor.web.filters import parse_event_filter
from monitor.web.pagination import DEFAULT_LIMIT, MAX_LIMIT, clamp_limit, link_next

router = APIRouter(tags=["events"])

Reader = Annotated[TokenInfo, Depends(api_user("read"))]
Writer = Annotated[TokenInfo, Depends(api_user("write"))]
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "No such event or country"}}


class Model(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class EventOut(Model):
    id: int
    title: str
    country: str | None
    categories: list[str]
    targets: list[str]
    stage: str
    status: str = Field(description="open, confirmed or dismissed (analysts' verdict)")
    first_seen: datetime
    last_change: datetime
    stage_changed_at: datetime | None
    sources: int
    max_score: float


class EventsOut(Model):
    items: list[EventOut]
    next: str | None = Field(description="Cursor of the next page; null on the last one")


class QuoteSegmentOut(Model):
    text: str
    marked: bool


class EvidenceOut(Model):
    item_id: int
    title: str
    url: str | None
    outlet: str
    language: str | None
    published: datetime
    fetched_at: datetime
    quote: list[QuoteSegmentOut] = Field(description="The deciding sentence, marked words apart")
    quote_from_title: bool
    relevant: bool | None
    score: float | None
    stage: str | None
    model_version: str | None
    reasons: list[str]
    matched_terms: list[str]


class StageStepOut(Model):
    number: int
    stage: str
    at: datetime
    announced: bool
    item_id: int | None
    item_title: str | None
    item_url: str | None
    feed: str | None


class AlertOut(Model):
    id: int
    route: str
    kind: str
    status: str
    attempts: int
    created_at: datetime
    sent_at: datetime | None
    last_error: str | None


class LinkOut(Model):
    label: str
    url: str


class EventDetailOut(Model):
    event: EventOut
    timeline: list[StageStepOut]
    items: list[EvidenceOut]
    item_total: int
    alerts: list[AlertOut]
    corroboration: list[LinkOut]


class FeedbackIn(BaseModel):
    """confirm: a real measure; dismiss: not relevant; correct: new labels (all three
    fields). Each writes one verdict per item of the event for `monitor train`."""

    action: Literal["confirm", "dismiss", "correct"]
    categories: list[str] | None = None
    stage: str | None = None
    country: str | None = None


class CountryOut(Model):
    code: str
    events: int
    open_events: int
    latest_stage: str
    last_change: datetime


class CountriesOut(Model):
    items: list[CountryOut]


class FeedHealthOut(Model):
    id: int
    name: str
    enabled: bool
    interval_s: int
    last_success_at: datetime | None
    consecutive_failures: int
    last_error_kind: str | None
    silent: bool


class CountryDetailOut(Model):
    code: str
    events: list[EventOut]
    feeds: list[FeedHealthOut]
    mostly_silent: bool
    silent_since: datetime | None


class MatrixCellOut(Model):
    category: str
    stage: str
    count: int


class DayCountOut(Model):
    day: date
    new_events: int
    stage_changes: int


class StatsOut(Model):
    since: datetime
    by_category_stage: list[MatrixCellOut]
    per_day: list[DayCountOut]


def _filter_params(request: Request) -> dict[str, str]:
    return {k: v for k, v in request.query_params.items() if k not in ("cursor", "limit")}


@router.get("/events", response_model=EventsOut)
def list_events(
    request: Request,
    response: Response,
    session: DbSession,
    user: Reader,
    country: Annotated[str | None, Query(description="ISO alpha-2 codes, comma-separated")] = None,
    category: Annotated[str | None, Query(description="comma-separated")] = None,
    stage: Annotated[str | None, Query(description="comma-separated")] = None,
    status: Annotated[str | None, Query(description="default: open,confirmed")] = None,
    since: Annotated[str | None, Query(description="7d, 24h or an ISO date")] = None,
    until: str | None = None,
    q: Annotated[str | None, Query(description="text in the title")] = None,
    min_sources: int | None = None,
    min_score: float | None = None,
    sort: Annotated[str | None, Query(description="last_change (default), first_seen, …")] = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(description=f"1..{MAX_LIMIT}; more is cut to {MAX_LIMIT}")] = (
        DEFAULT_LIMIT
    ),
) -> EventsOut:
    # The declared parameters document the API; the filter parses them all in one place.
    event_filter = parse_event_filter(_filter_params(request), web_context(request).clock.now())
    page = event_queries.events_page(session, event_filter, cursor, clamp_limit(limit))
    link_next(request, response, page.next_cursor)
    return EventsOut(items=[EventOut.model_validate(e) for e in page.events], next=page.next_cursor)


@router.get("/events/{event_id}", response_model=EventDetailOut, responses=NOT_FOUND)
def get_event(event_id: int, session: DbSession, user: Reader) -> EventDetailOut:
    detail = event_queries.event_detail(session, event_id)
    if detail is None:
        raise HTTPException(404, f"no event with id {event_id}")
    return EventDetailOut.model_validate(detail)


@router.post("/events/{event_id}/feedback", response_model=EventOut, responses=NOT_FOUND)
def event_feedback(
    request: Request, event_id: int, body: FeedbackIn, session: DbSession, user: Writer
) -> EventOut:
    now = web_context(request).clock.now()
    try:
        if body.action == "confirm":
            row = feedback.confirm_event(session, event_id, now)
        elif body.action == "dismiss":
            row = feedback.dismiss_event(session, event_id, now)
        else:
            if body.categories is None or body.stage is None:
                raise ValueError("correct: give categories and stage (and country, or null)")
            correction = EventCorrection(tuple(body.categories), body.stage, body.country)
            row = feedback.correct_event(session, event_id, correction, now)
    except LookupError as exc:
        session.rollback()
        raise HTTPException(404, str(exc)) from exc
    except ValueError as exc:
        session.rollback()
        raise HTTPException(422, str(exc)) from exc
    session.commit()
    return EventOut.model_validate(event_queries.summarize(row))


@router.get("/countries", response_model=CountriesOut)
def list_countries(session: DbSession, user: Reader) -> CountriesOut:
    return CountriesOut(
        items=[CountryOut.model_validate(c) for c in country_queries.countries(session)]
    )


@router.get("/countries/{code}", response_model=CountryDetailOut, responses=NOT_FOUND)
def get_country(request: Request, code: str, session: DbSession, user: Reader) -> CountryDetailOut:
    if len(code) != 2 or not code.isalpha():
        raise HTTPException(404, f"{code!r} is not an ISO alpha-2 country code")
    detail = country_queries.country_detail(session, code, web_context(request).clock.now())
    if not detail.events and not detail.feeds:
        raise HTTPException(404, f"no events and no feeds for country {code.upper()}")
    return CountryDetailOut.model_validate(detail)


@router.get("/stats", response_model=StatsOut)
def get_stats(
    request: Request,
    session: DbSession,
    user: Reader,
    since: Annotated[str, Query(description="how far back: 24h, 7d, 90d (at most 366d)")] = "7d",
) -> StatsOut:
    try:
        back = parse_duration(since)
    except ValueError as exc:
        raise HTTPException(400, f"since: {since!r} is not a duration (7d, 24h)") from exc
    if back.days > 366:
        raise HTTPException(400, "since: at most 366d")
    now = web_context(request).clock.now()
    found = overview_queries.stats(session, now - back, now)
    matrix = found.matrix
    cells = [
        MatrixCellOut(category=c, stage=s, count=matrix.count(c, s))
        for c in matrix.categories
        for s in matrix.stages
    ]
    return StatsOut(
        since=found.since,
        by_category_stage=cells,
        per_day=[DayCountOut.model_validate(d) for d in found.per_day],
    )
