"""Feeds out: Atom 1.0 and JSON Feed 1.1 of events (one entry per revision), and of items.

A feed reader shows an entry once and never again, however its `updated` moves
(changedetection.io #239): so each announced revision of an event, its opening and each
announced stage move, is an entry of its own with an id that never changes. The events feed
takes the same filter as /events, so a saved view is also a subscription.

Readers send no headers, so a `feeds`-scope token may ride in `?token=`; it never appears in
the links the feed gives out. This module decides what the entries are; feed_writers writes
them (escaping, control characters, conditional GET).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Annotated
from urllib.parse import urlencode, urlsplit

from fastapi import APIRouter, Depends, HTTPException, Request
from markupsafe import Markup, escape
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.responses import Response

from monitor.events.targets import TargetReader, target_label
from monitor.store.models import AssessmentRow, EventRow, FeedRow, ItemRow
from monitor.store.tokens import TokenInfo
from monitor.web.auth import DbSession, feed_user, web_context
from monitor.web.context import WebContext
from monitor.web.feed_writers import (
    ATOM_TYPE,
    AUTHOR,
    JSON_FEED_TYPE,
    FeedDoc,
    FeedEntry,
    atom_bytes,
    clean,
    conditional,
    json_feed_bytes,
    web_url,
)
from monitor.web.filters import DEFAULT_STATUSES, EventFilter, event_query, parse_event_filter
from monitor.web.pagination import DEFAULT_LIMIT, clamp_limit
from monitor.web.revisions import StageStep, timelines
from monitor.web.templating import CATEGORY_LABELS, country_label, when

router = APIRouter(include_in_schema=False)

# The date in every tag: URI (RFC 4151). Fixed for good: changing it changes every entry id.
TAG_DATE = "2026"
EVIDENCE_LINKS = 3
# Parameters of the feeds themselves, not of the events filter.
FEED_PARAMS = ("token", "limit")


@dataclass(frozen=True, slots=True)
class Site:
    """Where the app is reached: the tag: authority and the base of absolute links."""

    host: str
    base: str

    @classmethod
    def of(cls, request: Request, context: WebContext) -> Site:
        base = context.base_url or f"{request.url.scheme}://{request.url.netloc}"
        return cls(host=urlsplit(base).hostname or "localhost", base=base.rstrip("/"))

    def tag(self, specific: str) -> str:
        return f"tag:{self.host},{TAG_DATE}:{specific}"

    def url(self, path: str, params: dict[str, str] | None = None) -> str:
        query = f"?{urlencode(params)}" if params else ""
        return f"{self.base}{path}{query}"


@dataclass(frozen=True, slots=True)
class Evidence:
    """One source item of an event, as the content lists it."""

    title: str
    url: str | None
    feed: str
    published: datetime


# --- Queries ---------------------------------------------------------------------------------


def newest_events(session: Session, event_filter: EventFilter, limit: int) -> list[EventRow]:
    """The events whose revisions fill the feed, latest change first.

    Each has at least one revision, so `limit` events fill `limit` entries. An older event's
    stage move can be newer than a newer event's opening only when last_seen moved without a
    stage change; such a move waits for the next change of its event to come back in.
    """
    return list(session.scalars(event_query(event_filter).limit(limit)))


def top_evidence(session: Session, event_ids: Sequence[int]) -> dict[int, list[Evidence]]:
    """The best-scored items of each event, EVIDENCE_LINKS each, in one query for all."""
    if not event_ids:
        return {}
    rank = (
        func.row_number()
        .over(
            partition_by=ItemRow.event_id,
            order_by=(AssessmentRow.score.desc(), ItemRow.published.desc(), ItemRow.id.desc()),
        )
        .label("rank")
    )
    ranked = (
        select(ItemRow.event_id, ItemRow.title, ItemRow.url, FeedRow.name, ItemRow.published, rank)
        .join(AssessmentRow, AssessmentRow.item_id == ItemRow.id)
        .join(FeedRow, FeedRow.id == ItemRow.feed_id)
        .where(ItemRow.event_id.in_(list(event_ids)))
        .subquery()
    )
    rows = session.execute(
        select(ranked).where(ranked.c.rank <= EVIDENCE_LINKS).order_by(ranked.c.rank)
    )
    found: dict[int, list[Evidence]] = defaultdict(list)
    for event_id, title, url, feed, published, _rank in rows:
        found[event_id].append(Evidence(clean(title), web_url(url), clean(feed), published))
    return found


@dataclass(frozen=True, slots=True)
class FlaggedItem:
    id: int
    title: str
    summary: str
    url: str | None
    feed: str
    published: datetime
    fetched_at: datetime
    event_id: int | None
    score: float
    relevant: bool
    categories: tuple[str, ...]
    country: str | None
    stage: str
    reasons: tuple[str, ...]


def newest_items(session: Session, *, relevant_only: bool, limit: int) -> list[FlaggedItem]:
    """Assessed items, newest to us first (fetched_at: what a subscriber has not seen yet)."""
    statement = (
        select(ItemRow, AssessmentRow, FeedRow.name)
        .join(AssessmentRow, AssessmentRow.item_id == ItemRow.id)
        .join(FeedRow, FeedRow.id == ItemRow.feed_id)
        .order_by(ItemRow.fetched_at.desc(), ItemRow.id.desc())
        .limit(limit)
    )
    if relevant_only:
        statement = statement.where(AssessmentRow.relevant.is_(True))
    return [
        FlaggedItem(
            id=item.id,
            title=clean(item.title),
            summary=clean(item.summary),
            url=web_url(item.url),
            feed=clean(feed),
            published=item.published,
            fetched_at=item.fetched_at,
            event_id=item.event_id,
            score=assessment.score,
            relevant=assessment.relevant,
            categories=tuple(assessment.categories),
            country=assessment.country,
            stage=assessment.stage,
            reasons=tuple(clean(r) for r in assessment.evidence),
        )
        for item, assessment, feed in session.execute(statement).tuples()
    ]


# --- Event revisions as entries --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Revision:
    """One announced step of one event, with what the entry says about the event."""

    event: EventRow
    step: StageStep
    previous_stage: str | None  # None: the event opened with this step
    evidence: Sequence[Evidence]
    targets: str

    @property
    def stage_change(self) -> str:
        if self.previous_stage is None:
            return self.step.stage
        return f"{self.previous_stage} → {self.step.stage}"


def announced_revisions(
    events: Iterable[EventRow],
    steps: dict[int, list[StageStep]],
    evidence: dict[int, list[Evidence]],
    targets: TargetReader,
) -> list[Revision]:
    """Every announced step of the events, newest first (ties: by event and step, stable)."""
    revisions = []
    for event in events:
        label = clean(target_label(targets, event.targets))
        timeline = steps.get(event.id, [])
        for position, step in enumerate(timeline):
            if not step.announced:
                continue
            previous = timeline[position - 1].stage if position else None
            revisions.append(Revision(event, step, previous, evidence.get(event.id, []), label))
    revisions.sort(key=lambda r: (r.step.at, r.event.id, r.step.number), reverse=True)
    return revisions


def _heading(country: str | None, categories: Sequence[str], change: str) -> str:
    return f"[{country or '–'} · {', '.join(categories) or 'uncategorised'} · {change}]"


def _categories_text(categories: Sequence[str]) -> str:
    return ", ".join(CATEGORY_LABELS.get(c, c) for c in categories) or "none"


def _source_html(title: str, url: str | None, feed: str, at: datetime) -> Markup:
    linked = Markup('<a href="{}">{}</a>').format(url, title) if url else escape(title)
    return Markup("{} — {}, {}").format(linked, feed, when(at))


def _source_text(title: str, url: str | None, feed: str, at: datetime) -> str:
    return f"{title} — {feed}, {when(at)}" + (f" <{url}>" if url else "")


def revision_entry(revision: Revision, site: Site) -> FeedEntry:
    event, step = revision.event, revision.step
    title = clean(event.title)
    page = site.url(f"/events/{event.id}")
    facts = [
        ("Stage", f"{revision.stage_change} ({when(step.at)})"),
        ("Country", country_label(event.country)),
        ("Categories", _categories_text(event.categories)),
        ("Targets", revision.targets or "none named"),
    ]
    html = Markup("").join(Markup("<p><strong>{}:</strong> {}</p>").format(k, v) for k, v in facts)
    text = [f"{k}: {v}" for k, v in facts]
    if step.item_title is not None:
        source = (clean(step.item_title), web_url(step.item_url), clean(step.feed), step.at)
        html += Markup("<p><strong>Reported by:</strong> {}</p>").format(_source_html(*source))
        text.append(f"Reported by: {_source_text(*source)}")
    if revision.evidence:
        rows = [(e.title, e.url, e.feed, e.published) for e in revision.evidence]
        items = Markup("").join(Markup("<li>{}</li>").format(_source_html(*r)) for r in rows)
        html += Markup("<p><strong>Evidence:</strong></p><ul>{}</ul>").format(items)
        text += ["Evidence:", *(f"- {_source_text(*r)}" for r in rows)]
    html += Markup('<p><a href="{}">The event in monitor</a></p>').format(page)
    text.append(f"Event: {page}")
    return FeedEntry(
        id=site.tag(f"event/{event.id}/rev/{step.number}"),
        title=f"{_heading(event.country, event.categories, revision.stage_change)} {title}",
        updated=step.at,
        published=step.at,
        link=page,
        content_html=str(html),
        content_text="\n".join(text),
        tags=tuple(event.categories),
    )


def event_entries(
    session: Session, context: WebContext, site: Site, event_filter: EventFilter, limit: int
) -> tuple[FeedEntry, ...]:
    events = newest_events(session, event_filter, limit)
    steps = timelines(session, events)
    evidence = top_evidence(session, [e.id for e in events])
    revisions = announced_revisions(events, steps, evidence, context.targets())
    return tuple(revision_entry(r, site) for r in revisions[:limit])


def item_entry(item: FlaggedItem, site: Site) -> FeedEntry:
    change = f"{item.stage} · {item.score:.2f}"
    facts = [
        ("Verdict", f"{'flagged' if item.relevant else 'not flagged'}, score {item.score:.2f}"),
        ("Stage", item.stage),
        ("Country", country_label(item.country)),
        ("Categories", _categories_text(item.categories)),
    ]
    html = Markup("").join(Markup("<p><strong>{}:</strong> {}</p>").format(k, v) for k, v in facts)
    text = [f"{k}: {v}" for k, v in facts]
    source = (item.title, item.url, item.feed, item.published)
    html += Markup("<p><strong>Item:</strong> {}</p>").format(_source_html(*source))
    text.append(f"Item: {_source_text(*source)}")
    if item.summary:
        html += Markup("<blockquote>{}</blockquote>").format(item.summary)
        text.append(item.summary)
    if item.reasons:
        reasons = Markup("").join(Markup("<li>{}</li>").format(r) for r in item.reasons)
        html += Markup("<p><strong>Why flagged:</strong></p><ul>{}</ul>").format(reasons)
        text += ["Why flagged:", *(f"- {r}" for r in item.reasons)]
    event_page = site.url(f"/events/{item.event_id}") if item.event_id is not None else None
    if event_page is not None:
        html += Markup('<p><a href="{}">Its event in monitor</a></p>').format(event_page)
        text.append(f"Event: {event_page}")
    return FeedEntry(
        id=site.tag(f"item/{item.id}"),
        title=f"{_heading(item.country, item.categories, change)} {item.title}",
        updated=item.fetched_at,
        published=item.published,
        link=item.url or event_page,
        content_html=str(html),
        content_text="\n".join(text),
        tags=item.categories,
        related=event_page if item.url else None,
    )


# --- The filter in words and in links --------------------------------------------------------


def feed_view(event_filter: EventFilter, params: dict[str, str]) -> dict[str, str]:
    """The filter as the feed's query, with `since`/`until` as the subscriber wrote them.

    The parsed filter holds `since=7d` as a moment; written out that way, the feed's id, title
    and self link (and so its ETag) would change with every request.
    """
    view = event_filter.query_params()
    for name in ("since", "until"):
        if name in view:
            view[name] = clean(params[name])
    return view


def describe(event_filter: EventFilter, view: dict[str, str]) -> str:
    """'VN · platform_block' for a feed's title: a reader's list should say which view it is."""
    parts = [
        ", ".join(event_filter.countries),
        ", ".join(event_filter.categories),
        ", ".join(event_filter.stages),
    ]
    if event_filter.statuses != DEFAULT_STATUSES:
        parts.append(", ".join(event_filter.statuses))
    for name in ("since", "until"):
        if name in view:
            parts.append(f"{name} {view[name]}")
    if event_filter.q:
        parts.append(f"“{clean(event_filter.q)}”")
    if event_filter.min_sources is not None:
        parts.append(f"≥ {event_filter.min_sources} sources")
    if event_filter.min_score is not None:
        parts.append(f"score ≥ {event_filter.min_score:g}")
    words = " · ".join(p for p in parts if p)
    return f"{AUTHOR} · {words or 'all events'}"


def _feed_params(params: dict[str, str], limit: int) -> dict[str, str]:
    """A feed's own query: its filter and limit, never the token."""
    return {**params, "limit": str(limit)} if limit != DEFAULT_LIMIT else params


def parse_limit(raw: str | None) -> int:
    if raw is None or raw == "":
        return DEFAULT_LIMIT
    try:
        return clamp_limit(int(raw))
    except ValueError as exc:
        raise HTTPException(400, f"limit: {raw!r} is not a number") from exc


def events_feed(request: Request, session: Session) -> FeedDoc:
    context = web_context(request)
    params = {k: v for k, v in request.query_params.items() if k not in FEED_PARAMS}
    # A feed is a timeline: newest change first, whatever sort the page was saved with.
    event_filter = replace(parse_event_filter(params, context.clock.now()), sort="last_change")
    limit = parse_limit(request.query_params.get("limit"))
    site = Site.of(request, context)
    view = feed_view(event_filter, params)
    own = _feed_params(view, limit)
    return FeedDoc(
        id=site.tag("feed/events" + (f"?{urlencode(sorted(view.items()))}" if view else "")),
        title=describe(event_filter, view),
        home_url=site.url("/events", view),
        atom_url=site.url("/feeds/events.atom", own),
        json_url=site.url("/feeds/events.json", own),
        entries=event_entries(session, context, site, event_filter, limit),
    )


def items_feed(request: Request, session: Session) -> FeedDoc:
    relevant = request.query_params.get("relevant", "1")
    if relevant not in ("0", "1"):
        raise HTTPException(400, f"relevant: {relevant!r}; use 1 (flagged only) or 0 (all)")
    limit = parse_limit(request.query_params.get("limit"))
    site = Site.of(request, web_context(request))
    items = newest_items(session, relevant_only=relevant == "1", limit=limit)
    own = _feed_params({"relevant": relevant}, limit)
    return FeedDoc(
        id=site.tag(f"feed/items?relevant={relevant}"),
        title=f"{AUTHOR} · {'flagged' if relevant == '1' else 'all assessed'} items",
        home_url=site.url("/"),
        atom_url=site.url("/feeds/items.atom", own),
        json_url=site.url("/feeds/items.json", own),
        entries=tuple(item_entry(item, site) for item in items),
    )


# --- Routes ----------------------------------------------------------------------------------

FeedUser = Annotated[TokenInfo, Depends(feed_user())]


@router.get("/feeds/events.atom")
def events_atom(request: Request, session: DbSession, _user: FeedUser) -> Response:
    doc = events_feed(request, session)
    return conditional(request, atom_bytes(doc), ATOM_TYPE, doc)


@router.get("/feeds/events.json")
def events_json(request: Request, session: DbSession, _user: FeedUser) -> Response:
    doc = events_feed(request, session)
    return conditional(request, json_feed_bytes(doc), JSON_FEED_TYPE, doc)


@router.get("/feeds/items.atom")
def items_atom(request: Request, session: DbSession, _user: FeedUser) -> Response:
    doc = items_feed(request, session)
    return conditional(request, atom_bytes(doc), ATOM_TYPE, doc)


@router.get("/feeds/items.json")
def items_json(request: Request, session: DbSession, _user: FeedUser) -> Response:
    doc = items_feed(request, session)
    return conditional(request, json_feed_bytes(doc), JSON_FEED_TYPE, doc)
