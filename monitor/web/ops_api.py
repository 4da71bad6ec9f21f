"""The operators' JSON API under /api/v1: items and verdicts, feeds and their polls, the
outbox, the status line. Reads need the read scope, writes the write scope.

Lists answer `{"items": [...], "next": cursor-or-null}` with a `Link: rel="next"` header;
the pages (ops_pages) show the same dataclasses from triage_queries, source_queries and
outbox_queries.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel
from starlette.responses import Response

from monitor.store import repo
from monitor.store.tokens import TokenInfo
from monitor.web import outbox_queries, source_queries, triage_queries
from monitor.web.auth import DbSession, api_user, web_context
from monitor.web.pagination import (
    DEFAULT_LIMIT,
    clamp_limit,
    decode_cursor,
    encode_cursor,
    link_next,
)

router = APIRouter(tags=["operators"])

Reader = Annotated[TokenInfo, Depends(api_user("read"))]
Writer = Annotated[TokenInfo, Depends(api_user("write"))]


# ------------------------------------------------------------------------------ models


class VerdictOut(BaseModel):
    relevant: bool
    at: datetime


class ItemOut(BaseModel):
    id: int
    title: str
    url: str | None
    feed_id: int
    feed: str
    language: str | None
    published: datetime
    event_id: int | None
    relevant: bool
    score: float
    categories: list[str]
    country: str | None
    stage: str
    matched_terms: list[str]
    verdict: VerdictOut | None

    @classmethod
    def of(cls, item: triage_queries.TriageItem) -> ItemOut:
        verdict = item.verdict
        return cls(
            id=item.id, title=item.title, url=item.url, feed_id=item.feed_id, feed=item.feed,
            language=item.language, published=item.published, event_id=item.event_id,
            relevant=item.relevant, score=item.score, categories=list(item.categories),
            country=item.country, stage=item.stage, matched_terms=list(item.matched_terms),
            verdict=VerdictOut(relevant=verdict.relevant, at=verdict.at) if verdict else None,
        )  # fmt: skip


class AssessmentOut(BaseModel):
    relevant: bool
    score: float
    categories: list[str]
    country: str | None
    stage: str
    evidence: list[str]
    matched_terms: list[str]
    model_version: str


class ItemDetailOut(BaseModel):
    id: int
    title: str
    summary: str
    url: str | None
    feed_id: int
    feed: str
    language: str | None
    published: datetime
    fetched_at: datetime
    event_id: int | None
    assessment: AssessmentOut
    verdict: VerdictOut | None


class ItemPage(BaseModel):
    items: list[ItemOut]
    next: str | None
    threshold: float


class FeedbackIn(BaseModel):
    """relevant=true confirms the classifier's labels; false says the item reports nothing."""

    relevant: bool


class FeedOut(BaseModel):
    id: int
    name: str
    url: str
    state: source_queries.FeedState
    country: str | None
    language: str | None
    interval_s: int
    enabled: bool
    gone: bool
    moved_to: str | None
    last_polled_at: datetime | None
    last_success_at: datetime | None
    next_poll_at: datetime
    consecutive_failures: int
    last_error_kind: str | None
    last_error: str | None
    fetches_7d: int
    not_modified_7d: int
    not_modified_ratio_7d: float | None
    items_7d: int
    flagged_7d: int
    last_item_at: datetime | None
    usual_gap_s: float | None

    @classmethod
    def of(cls, feed: source_queries.FeedHealth) -> FeedOut:
        return cls(
            id=feed.id, name=feed.name, url=feed.url, state=feed.state,
            country=feed.country, language=feed.language, interval_s=feed.interval_s,
            enabled=feed.enabled, gone=feed.gone, moved_to=feed.moved_to,
            last_polled_at=feed.last_polled_at, last_success_at=feed.last_success_at,
            next_poll_at=feed.next_poll_at, consecutive_failures=feed.consecutive_failures,
            last_error_kind=feed.last_error_kind, last_error=feed.last_error,
            fetches_7d=feed.fetches_7d, not_modified_7d=feed.not_modified_7d,
            not_modified_ratio_7d=feed.not_modified_ratio, items_7d=feed.items_7d,
            flagged_7d=feed.flagged_7d, last_item_at=feed.last_item_at,
            usual_gap_s=feed.usual_gap_s,
        )  # fmt: skip


class FeedList(BaseModel):
    """Every feed (a few thousand at most: one page), and how many are in each state."""

    items: list[FeedOut]
    next: None = None
    counts: dict[str, int]


class FetchOut(BaseModel):
    id: int
    started_at: datetime
    outcome: str
    http_status: int | None
    bytes: int
    entries: int
    new_items: int
    duration_ms: int
    error_kind: str | None
    error: str | None


class FetchPage(BaseModel):
    items: list[FetchOut]
    next: str | None


class AlertOut(BaseModel):
    id: int
    route: str
    kind: str
    title: str
    event_id: int | None
    event_title: str | None
    feed_id: int | None
    status: str
    attempts: int
    last_error: str | None
    due_at: datetime
    created_at: datetime
    sent_at: datetime | None


class AlertPage(BaseModel):
    items: list[AlertOut]
    next: str | None
    counts: dict[str, int]


class Done(BaseModel):
    """What a write changed."""

    ok: bool
    changed: int


class VersionOut(BaseModel):
    version: str


class StatusOut(BaseModel):
    version: str
    db_backend: str
    started_at: datetime | None
    uptime_s: float | None
    # Only a process that runs the scheduler knows when it ticked; null under `monitor serve`.
    scheduler_running: bool | None
    last_tick_at: datetime | None
    feeds_due: int
    feeds_failing: int
    last_poll_at: datetime | None
    outbox: dict[str, int]


# ------------------------------------------------------------------------------ items


def _page_cursor(after: list[object] | None) -> str | None:
    return encode_cursor(after) if after else None


@router.get("/items", response_model=ItemPage)
def list_items(
    request: Request,
    response: Response,
    session: DbSession,
    _user: Reader,
    cursor: str | None = None,
    limit: int = DEFAULT_LIMIT,
) -> ItemPage:
    """The triage list, with the /items page's filters: relevant=yes|no, score_lt, score_gt,
    language, feed (id), since (7d or a date; default 7 d), all=1 for every item."""
    context = web_context(request)
    triage = triage_queries.parse_triage_filter(dict(request.query_params), context.clock.now())
    threshold = triage_queries.cached_threshold(context.extras)
    items, after = triage_queries.triage_items(
        session, triage, threshold, after=decode_cursor(cursor), limit=clamp_limit(limit)
    )
    next_cursor = _page_cursor(after)
    link_next(request, response, next_cursor)
    return ItemPage(items=[ItemOut.of(i) for i in items], next=next_cursor, threshold=threshold)


@router.get("/items/{item_id}", response_model=ItemDetailOut)
def get_item(session: DbSession, _user: Reader, item_id: int) -> ItemDetailOut:
    detail = triage_queries.item_detail(session, item_id)
    if detail is None:
        raise HTTPException(404, f"no item with id {item_id}")
    item = ItemOut.of(detail.item)
    return ItemDetailOut(
        id=item.id, title=item.title, summary=detail.summary, url=item.url,
        feed_id=item.feed_id, feed=item.feed, language=item.language,
        published=item.published, fetched_at=detail.fetched_at, event_id=item.event_id,
        assessment=AssessmentOut(
            relevant=item.relevant, score=item.score, categories=item.categories,
            country=item.country, stage=item.stage, evidence=list(detail.evidence),
            matched_terms=item.matched_terms, model_version=detail.model_version,
        ),
        verdict=item.verdict,
    )  # fmt: skip


@router.post("/items/{item_id}/feedback", response_model=Done, status_code=201)
def post_feedback(
    request: Request, session: DbSession, _user: Writer, item_id: int, body: FeedbackIn
) -> Done:
    detail = triage_queries.item_detail(session, item_id)
    if detail is None:
        raise HTTPException(404, f"no item with id {item_id}")
    triage_queries.record_verdict(
        session, detail.item, body.relevant, web_context(request).clock.now()
    )
    session.commit()
    return Done(ok=True, changed=1)


# ------------------------------------------------------------------------------ feeds


@router.get("/feeds", response_model=FeedList)
def list_feeds(
    request: Request,
    session: DbSession,
    _user: Reader,
    state: source_queries.FeedState | None = None,
) -> FeedList:
    now = web_context(request).clock.now()
    stats = source_queries.cached_feed_stats(web_context(request).extras, session, now)
    feeds = source_queries.feed_health(session, now, stats=stats)
    shown = [feed for feed in feeds if state is None or feed.state == state]
    return FeedList(items=[FeedOut.of(f) for f in shown], counts=source_queries.state_counts(feeds))


@router.get("/feeds/{feed_id}", response_model=FeedOut)
def get_feed(request: Request, session: DbSession, _user: Reader, feed_id: int) -> FeedOut:
    found = source_queries.feed_health(session, web_context(request).clock.now(), feed_id)
    if not found:
        raise HTTPException(404, f"no feed with id {feed_id}")
    return FeedOut.of(found[0])


@router.get("/feeds/{feed_id}/fetches", response_model=FetchPage)
def list_fetches(
    request: Request,
    response: Response,
    session: DbSession,
    _user: Reader,
    feed_id: int,
    cursor: str | None = None,
    limit: int = DEFAULT_LIMIT,
) -> FetchPage:
    """The feed's polls, newest first (kept for retention.fetch_log, 30 days by default)."""
    fetches, after = source_queries.fetch_history(
        session, feed_id, after=decode_cursor(cursor), limit=clamp_limit(limit)
    )
    next_cursor = _page_cursor(after)
    link_next(request, response, next_cursor)
    items = [FetchOut.model_validate(fetch, from_attributes=True) for fetch in fetches]
    return FetchPage(items=items, next=next_cursor)


@router.post("/feeds/{feed_id}/refresh", response_model=Done)
def refresh_feed(request: Request, session: DbSession, _user: Writer, feed_id: int) -> Done:
    """Due at the scheduler's next tick."""
    if not repo.poll_feed_now(session, feed_id, web_context(request).clock.now()):
        raise HTTPException(404, f"no feed with id {feed_id}")
    session.commit()
    return Done(ok=True, changed=1)


@router.post("/feeds/{feed_id}/reset-errors", response_model=Done)
def reset_feed_errors(request: Request, session: DbSession, _user: Writer, feed_id: int) -> Done:
    if not repo.reset_feed_errors(session, feed_id):
        raise HTTPException(404, f"no feed with id {feed_id}")
    session.commit()
    request.app.state.nav_failing = None
    return Done(ok=True, changed=1)


# ------------------------------------------------------------------------------ outbox


@router.get("/alerts", response_model=AlertPage)
def list_alerts(
    request: Request,
    response: Response,
    session: DbSession,
    _user: Reader,
    status: str | None = None,
    route: str | None = None,
    cursor: str | None = None,
    limit: int = DEFAULT_LIMIT,
) -> AlertPage:
    """Outbox rows, newest first; status is one of pending, sending, digest, sent, dead."""
    alerts, after = outbox_queries.alerts_page(
        session,
        status=outbox_queries.parse_alert_status(status),
        route=route or None,
        after=decode_cursor(cursor),
        limit=clamp_limit(limit),
    )
    next_cursor = _page_cursor(after)
    link_next(request, response, next_cursor)
    items = [AlertOut.model_validate(alert, from_attributes=True) for alert in alerts]
    return AlertPage(
        items=items, next=next_cursor, counts=outbox_queries.outbox_counts(session, route or None)
    )


@router.post("/alerts/{alert_id}/retry", response_model=Done)
def retry_alert(request: Request, session: DbSession, _user: Writer, alert_id: int) -> Done:
    """A dead alert back to pending, due now (changed=0 if it was not dead)."""
    changed = repo.retry_dead_alerts(session, web_context(request).clock.now(), alert_id=alert_id)
    session.commit()
    return Done(ok=True, changed=changed)


# ------------------------------------------------------------------------------ status


@router.get("/status", response_model=StatusOut)
def get_status(request: Request, session: DbSession, _user: Reader) -> StatusOut:
    context = web_context(request)
    polling = source_queries.polling_status(session, context.clock.now())
    daemon = context.daemon_state()
    now = context.clock.now()
    started = context.started_at
    return StatusOut(
        version=context.version,
        db_backend=context.db_backend,
        started_at=started,
        uptime_s=(now - started).total_seconds() if started else None,
        scheduler_running=daemon.scheduler_running if daemon else None,
        last_tick_at=daemon.last_tick_at if daemon else None,
        feeds_due=polling.feeds_due,
        feeds_failing=polling.feeds_failing,
        last_poll_at=polling.last_poll_at,
        outbox=outbox_queries.outbox_counts(session),
    )


@router.get("/version", response_model=VersionOut)
def get_version(request: Request, _user: Reader) -> VersionOut:
    return VersionOut(version=web_context(request).version)
