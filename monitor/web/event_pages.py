"""The event-centred pages: overview, events (with CSV and saved-view feeds), one event with
its evidence and the analysts' actions, countries.

Handlers parse, call `event_queries` (or `store.feedback` to act) and render; actions answer
POST with a redirect back to the page (POST-redirect-GET), or the page again with the error.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from starlette.responses import RedirectResponse, Response

from monitor.store import feedback, tokens
from monitor.store.feedback import EventCorrection
from monitor.store.tokens import TokenInfo
from monitor.web import country_queries, event_queries, overview_queries, svg
from monitor.web.auth import DbSession, page_user, web_context
from monitor.web.filters import CATEGORIES, SORTS, STAGES, STATUSES, parse_event_filter
from monitor.web.templating import CATEGORY_LABELS, render

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 50
CSV_MAX_ROWS = 50_000
# The query parameters that make up an events view (what a saved feed URL carries).
VIEW_PARAMS = (
    "country", "category", "stage", "status", "since", "until", "q", "min_sources",
    "min_score", "sort",
)  # fmt: skip
DONE_NOTES = {
    "confirmed": "Confirmed: its items are recorded as relevant for the next `monitor train`.",
    "dismissed": "Marked not relevant: its items are recorded as negative examples, and it "
    "no longer shows in the default events view.",
    "corrected": "Corrected: the event and its items carry the new labels.",
}

Reader = Annotated[TokenInfo, Depends(page_user("read"))]
Writer = Annotated[TokenInfo, Depends(page_user("write"))]


def view_params(params: Mapping[str, str]) -> dict[str, str]:
    """The view's parameters as given, not re-derived from the parsed filter: a relative
    `since=7d` must stay relative in a saved feed URL, not freeze into today's date."""
    return {name: params[name] for name in VIEW_PARAMS if params.get(name)}


# --- overview ----------------------------------------------------------------------------


@router.get("/")
def overview(request: Request, session: DbSession, user: Reader) -> Response:
    context = web_context(request)
    now = context.clock.now()
    state = context.daemon_state()
    found = overview_queries.overview(session, now)
    strip = overview_queries.system_strip(
        session, state.reload if state else None, state is not None
    )
    sparks = {
        c.code: svg.sparkline(
            c.per_day, f"{c.code}: {c.total} in {overview_queries.SPARK_DAYS} days"
        )
        for c in found.countries
    }
    return render(
        request,
        "events/overview.html",
        {
            "section": "overview",
            "overview": found,
            "strip": strip,
            "sparks": sparks,
            "matrix_chart": svg.stacked_matrix(found.matrix, CATEGORY_LABELS),
            "nav_failing": strip.feeds_failing,
        },
    )


# --- events list, CSV, subscriptions -----------------------------------------------------


@router.get("/events")
def events(request: Request, session: DbSession, user: Reader) -> Response:
    params = dict(request.query_params)
    event_filter = parse_event_filter(params, web_context(request).clock.now())
    page = event_queries.events_page(session, event_filter, params.get("cursor"), PAGE_SIZE)
    view = view_params(params)
    query = urlencode(view)
    next_url = (
        f"/events?{urlencode({**view, 'cursor': page.next_cursor})}" if page.next_cursor else None
    )
    return render(
        request,
        "events/list.html",
        {
            "section": "events",
            "filter": event_filter,
            "view": view,
            "page": page,
            "next_url": next_url,
            "first_page": not params.get("cursor"),
            "atom_url": f"/feeds/events.atom?{query}",
            "json_url": f"/feeds/events.json?{query}",
            "csv_url": f"/events.csv?{query}",
            "api_url": f"/api/v1/events?{query}",
            "choices": _choices(),
            "can_write": "write" in user.scopes,
        },
    )


def _choices() -> dict[str, tuple[str, ...]]:
    return {"categories": CATEGORIES, "stages": STAGES, "statuses": STATUSES, "sorts": tuple(SORTS)}


@router.get("/events.csv")
def events_csv(request: Request, session: DbSession, user: Reader) -> Response:
    event_filter = parse_event_filter(dict(request.query_params), web_context(request).clock.now())
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        ["id", "country", "categories", "targets", "stage", "status", "title",
         "first_seen", "last_change", "sources", "max_score"]
    )  # fmt: skip
    for event in event_queries.all_events(session, event_filter, CSV_MAX_ROWS):
        writer.writerow(
            [event.id, event.country or "", ";".join(event.categories),
             ";".join(event.targets), event.stage, event.status, _cell(event.title),
             event.first_seen.isoformat(), event.last_change.isoformat(), event.sources,
             f"{event.max_score:.3f}"]
        )  # fmt: skip
    headers = {"Content-Disposition": 'attachment; filename="events.csv"'}
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8", headers=headers)


def _cell(text: str) -> str:
    """A headline starting with = + - @ would run as a formula in a spreadsheet."""
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


@router.post("/events/subscribe")
def subscribe(
    request: Request,
    session: DbSession,
    user: Writer,
    name: Annotated[str, Form()] = "",
    country: Annotated[str, Form()] = "",
    category: Annotated[str, Form()] = "",
    stage: Annotated[str, Form()] = "",
    status: Annotated[str, Form()] = "",
    since: Annotated[str, Form()] = "",
    until: Annotated[str, Form()] = "",
    q: Annotated[str, Form()] = "",
    min_sources: Annotated[str, Form()] = "",
    min_score: Annotated[str, Form()] = "",
    sort: Annotated[str, Form()] = "",
) -> Response:
    """A named `feeds` token for this view; its URLs are shown once, on this answer (a
    redirect would have to carry the token in a URL of this site)."""
    context = web_context(request)
    now = context.clock.now()
    view = view_params(
        {"country": country, "category": category, "stage": stage, "status": status,
         "since": since, "until": until, "q": q, "min_sources": min_sources,
         "min_score": min_score, "sort": sort}
    )  # fmt: skip
    parse_event_filter(view, now)  # a wrong view is a 400 naming the parameter
    if not name.strip():
        raise HTTPException(400, "name: say who or what will read this feed")
    token = tokens.create_token(session, f"feed: {name.strip()}", ("feeds",), now)
    session.commit()
    base = context.base_url or str(request.base_url).rstrip("/")
    query = urlencode({**view, "token": token})
    return render(
        request,
        "events/subscribed.html",
        {
            "section": "events",
            "name": name.strip(),
            "atom_url": f"{base}/feeds/events.atom?{query}",
            "json_url": f"{base}/feeds/events.json?{query}",
            "back_url": f"/events?{urlencode(view)}",
        },
        # The answer carries a secret: no cache may keep it.
        headers={"Cache-Control": "no-store"},
    )


# --- one event ---------------------------------------------------------------------------


@router.get("/events/{event_id}")
def event_page(request: Request, event_id: int, session: DbSession, user: Reader) -> Response:
    done = request.query_params.get("done")
    return _event_page(request, session, user, event_id, note=DONE_NOTES.get(done or ""))


def _event_page(
    request: Request,
    session: DbSession,
    user: TokenInfo,
    event_id: int,
    *,
    note: str | None = None,
    error: str | None = None,
) -> Response:
    detail = event_queries.event_detail(session, event_id)
    if detail is None:
        return render(
            request,
            "events/missing.html",
            {"section": "events", "event_id": event_id},
            status_code=404,
        )
    return render(
        request,
        "events/detail.html",
        {
            "section": "events",
            "detail": detail,
            "note": note,
            "error": error,
            "can_write": "write" in user.scopes,
            "choices": _choices(),
        },
        status_code=400 if error else 200,
    )


@router.post("/events/{event_id}/confirm")
def confirm(request: Request, event_id: int, session: DbSession, user: Writer) -> Response:
    return _act(request, session, user, event_id, "confirmed")


@router.post("/events/{event_id}/dismiss")
def dismiss(request: Request, event_id: int, session: DbSession, user: Writer) -> Response:
    return _act(request, session, user, event_id, "dismissed")


@router.post("/events/{event_id}/correct")
def correct(
    request: Request,
    event_id: int,
    session: DbSession,
    user: Writer,
    stage: Annotated[str, Form()] = "",
    country: Annotated[str, Form()] = "",
    category: Annotated[list[str] | None, Form()] = None,
) -> Response:
    correction = EventCorrection(tuple(category or ()), stage, country or None)
    return _act(request, session, user, event_id, "corrected", correction)


def _act(
    request: Request,
    session: DbSession,
    user: TokenInfo,
    event_id: int,
    done: str,
    correction: EventCorrection | None = None,
) -> Response:
    now = web_context(request).clock.now()
    try:
        if done == "confirmed":
            feedback.confirm_event(session, event_id, now)
        elif done == "dismissed":
            feedback.dismiss_event(session, event_id, now)
        elif correction is not None:
            feedback.correct_event(session, event_id, correction, now)
    except LookupError:
        session.rollback()
        return _event_page(request, session, user, event_id)
    except ValueError as exc:
        session.rollback()
        return _event_page(request, session, user, event_id, error=str(exc))
    session.commit()
    return RedirectResponse(f"/events/{event_id}?done={done}", status_code=303)


# --- countries ---------------------------------------------------------------------------


@router.get("/countries")
def countries(request: Request, session: DbSession, user: Reader) -> Response:
    return render(
        request,
        "events/countries.html",
        {"section": "countries", "countries": country_queries.countries(session)},
    )


@router.get("/countries/{code}")
def country(request: Request, code: str, session: DbSession, user: Reader) -> Response:
    if len(code) != 2 or not code.isalpha():
        raise HTTPException(404, f"{code!r} is not an ISO alpha-2 country code")
    detail = country_queries.country_detail(session, code, web_context(request).clock.now())
    days = country_queries.SWIMLANE_DAYS
    title = f"{code.upper()}: events by category over {days} days, coloured by stage"
    chart = svg.swimlane(
        detail.lanes, detail.window_start, detail.window_end, CATEGORY_LABELS, title
    )
    return render(
        request,
        "events/country.html",
        {"section": "countries", "detail": detail, "chart": chart},
    )
