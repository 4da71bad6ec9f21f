"""The operators' pages: triage of items, source health, the alert outbox, the system.

Every action is a `<button>` in a `<form method=post>` that needs the write scope and
answers with a redirect back to the page it came from (POST-redirect-GET).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from starlette.responses import RedirectResponse, Response

from monitor.config.schema import config_fingerprint, load_config
from monitor.errors import ConfigError
from monitor.store import repo, tokens
from monitor.store.tokens import TokenInfo
from monitor.web import outbox_queries, source_queries, triage_queries
from monitor.web.auth import DbSession, login_redirect_target, page_user, web_context
from monitor.web.pagination import decode_cursor, encode_cursor
from monitor.web.templating import render

router = APIRouter(include_in_schema=False)

Reader = Annotated[TokenInfo, Depends(page_user("read"))]
Writer = Annotated[TokenInfo, Depends(page_user("write"))]
PAGE_SIZE = 50
FETCHES_SHOWN = 50


def _back(request: Request, back: str | None, fallback: str) -> Response:
    """303 to the page the form was on (only a path on this site)."""
    target = login_redirect_target(back) if back else fallback
    return RedirectResponse(target, status_code=303)


def _path_with_query(request: Request) -> str:
    return request.url.path + (f"?{request.url.query}" if request.url.query else "")


# ------------------------------------------------------------------------------ triage


@router.get("/items")
def triage_page(request: Request, session: DbSession, _user: Reader) -> Response:
    now = web_context(request).clock.now()
    params = dict(request.query_params)
    triage = triage_queries.parse_triage_filter(params, now)
    threshold = triage_queries.cached_threshold(web_context(request).extras)
    items, after = triage_queries.triage_items(
        session, triage, threshold, after=decode_cursor(params.get("cursor")), limit=PAGE_SIZE
    )
    next_params = {**triage.query_params(), "cursor": encode_cursor(after)} if after else None
    return render(
        request,
        "ops/items.html",
        {
            "section": "items",
            "filter": triage,
            "items": items,
            "threshold": threshold,
            "margin": triage_queries.TRIAGE_MARGIN,
            "feeds": triage_queries.triage_feed_choices(session),
            "next_params": next_params,
            "here": _path_with_query(request),
        },
    )


@router.post("/items/{item_id}/feedback")
def triage_feedback(
    request: Request,
    session: DbSession,
    _user: Writer,
    item_id: int,
    verdict: Annotated[str, Form()],
    back: Annotated[str | None, Form()] = None,
) -> Response:
    """ "Relevant" confirms the classifier's labels; "not relevant" says it saw nothing."""
    if verdict not in ("relevant", "not_relevant"):
        raise HTTPException(400, "verdict: use relevant or not_relevant")
    detail = triage_queries.item_detail(session, item_id)
    if detail is None:
        raise HTTPException(404, f"no item with id {item_id}")
    triage_queries.record_verdict(
        session, detail.item, verdict == "relevant", web_context(request).clock.now()
    )
    session.commit()
    return _back(request, back, "/items")


# ------------------------------------------------------------------------ source health


@router.get("/feeds")
def feeds_page(
    request: Request, session: DbSession, _user: Reader, state: str | None = None
) -> Response:
    if state and state not in source_queries.FEED_STATES:
        raise HTTPException(
            400, f"state: unknown {state!r}; use {', '.join(source_queries.FEED_STATES)}"
        )
    now = web_context(request).clock.now()
    feeds = source_queries.feed_health(
        session,
        now,
        stats=source_queries.cached_feed_stats(web_context(request).extras, session, now),
    )
    shown = [feed for feed in feeds if state is None or feed.state == state]
    return render(
        request,
        "ops/feeds.html",
        {
            "section": "feeds",
            "feeds": shown,
            "counts": source_queries.state_counts(feeds),
            "total": len(feeds),
            "state": state,
            "states": source_queries.FEED_STATES,
        },
    )


@dataclass(frozen=True, slots=True)
class DurationBar:
    """One bar of the fetch-duration chart (drawn in SVG on the server)."""

    x: float
    y: float
    width: float
    height: float
    outcome: str
    label: str


CHART_WIDTH = 600
CHART_HEIGHT = 120


def duration_bars(fetches: list[source_queries.FetchEntry]) -> tuple[list[DurationBar], int]:
    """Bars oldest to newest, scaled to the slowest poll; and that slowest duration (ms)."""
    if not fetches:
        return [], 0
    slowest = max(max(fetch.duration_ms for fetch in fetches), 1)
    step = CHART_WIDTH / len(fetches)
    bars = []
    for n, fetch in enumerate(reversed(fetches)):
        height = max(CHART_HEIGHT * fetch.duration_ms / slowest, 1.0)
        bars.append(
            DurationBar(
                x=round(n * step, 1),
                y=round(CHART_HEIGHT - height, 1),
                width=round(max(step - 1, 1.0), 1),
                height=round(height, 1),
                outcome=fetch.outcome,
                label=f"{fetch.started_at:%Y-%m-%d %H:%M} {fetch.outcome} {fetch.duration_ms} ms",
            )
        )
    return bars, slowest


@router.get("/feeds/{feed_id}")
def feed_page(request: Request, session: DbSession, _user: Reader, feed_id: int) -> Response:
    now = web_context(request).clock.now()
    found = source_queries.feed_health(session, now, feed_id)
    if not found:
        raise HTTPException(404, f"no feed with id {feed_id}")
    fetches, _next = source_queries.fetch_history(session, feed_id, limit=FETCHES_SHOWN)
    bars, slowest = duration_bars(fetches)
    return render(
        request,
        "ops/feed.html",
        {
            "section": "feeds",
            "feed": found[0],
            "fetches": fetches,
            "bars": bars,
            "slowest": slowest,
            "chart_width": CHART_WIDTH,
            "chart_height": CHART_HEIGHT,
        },
    )


@router.post("/feeds/{feed_id}/poll-now")
def feed_poll_now(request: Request, session: DbSession, _user: Writer, feed_id: int) -> Response:
    if not repo.poll_feed_now(session, feed_id, web_context(request).clock.now()):
        raise HTTPException(404, f"no feed with id {feed_id}")
    session.commit()
    return _back(request, f"/feeds/{feed_id}", "/feeds")


@router.post("/feeds/{feed_id}/reset-errors")
def feed_reset_errors(
    request: Request, session: DbSession, _user: Writer, feed_id: int
) -> Response:
    if not repo.reset_feed_errors(session, feed_id):
        raise HTTPException(404, f"no feed with id {feed_id}")
    session.commit()
    request.app.state.nav_failing = None  # the badge should not show it for 10 more s
    return _back(request, f"/feeds/{feed_id}", "/feeds")


# ------------------------------------------------------------------------------ outbox


@router.get("/alerts")
def alerts_page(
    request: Request,
    session: DbSession,
    _user: Reader,
    status: str | None = None,
    route: str | None = None,
    cursor: str | None = None,
) -> Response:
    status = outbox_queries.parse_alert_status(status)
    route = route or None
    alerts, after = outbox_queries.alerts_page(
        session, status=status, route=route, after=decode_cursor(cursor), limit=PAGE_SIZE
    )
    base = {k: v for k, v in (("status", status), ("route", route)) if v}
    next_params = {**base, "cursor": encode_cursor(after)} if after else None
    counts = outbox_queries.outbox_counts(session, route)
    return render(
        request,
        "ops/alerts.html",
        {
            "section": "alerts",
            "alerts": alerts,
            "counts": counts,
            "tabs": status_tabs(counts, status, route),
            "status": status,
            "route": route,
            "routes": outbox_queries.alert_routes(session),
            "next_params": next_params,
            "here": _path_with_query(request),
        },
    )


@dataclass(frozen=True, slots=True)
class Tab:
    label: str
    href: str
    current: bool
    count: int


def status_tabs(counts: dict[str, int], status: str | None, route: str | None) -> list[Tab]:
    """ "all" and one tab per outbox status, keeping the route filter."""
    keep = {"route": route} if route else {}
    tabs = [Tab("all", "/alerts?" + urlencode(keep), status is None, sum(counts.values()))]
    for name in outbox_queries.ALERT_STATUSES:
        href = "/alerts?" + urlencode({"status": name, **keep})
        tabs.append(Tab(name, href, status == name, counts[name]))
    return tabs


@router.post("/alerts/{alert_id}/retry")
def alert_retry(
    request: Request,
    session: DbSession,
    _user: Writer,
    alert_id: int,
    back: Annotated[str | None, Form()] = None,
) -> Response:
    repo.retry_dead_alerts(session, web_context(request).clock.now(), alert_id=alert_id)
    session.commit()
    return _back(request, back, "/alerts")


@router.post("/alerts/retry-dead")
def alerts_retry_dead(
    request: Request,
    session: DbSession,
    _user: Writer,
    route: Annotated[str | None, Form()] = None,
    back: Annotated[str | None, Form()] = None,
) -> Response:
    """What `monitor alerts retry [--route]` does."""
    repo.retry_dead_alerts(session, web_context(request).clock.now(), route=route or None)
    session.commit()
    return _back(request, back, "/alerts")


# ------------------------------------------------------------------------------ system


@dataclass(frozen=True, slots=True)
class ConfigCheck:
    """The config file as it is now: its fingerprint and whether it loads."""

    path: str | None
    fingerprint: str | None
    error: str | None


def check_config(path: Path | None) -> ConfigCheck:
    """Validate feeds.yaml now, as a reload would (its error names file, line and field)."""
    if path is None:
        return ConfigCheck(None, None, None)
    fingerprint = _fingerprint(path)
    try:
        load_config(path, os.environ)
    except ConfigError as exc:
        return ConfigCheck(str(path), fingerprint, str(exc))
    return ConfigCheck(str(path), fingerprint, None)


def _fingerprint(path: Path) -> str | None:
    try:
        return config_fingerprint(path)
    except ConfigError:
        return None


@router.get("/system")
def system_page(request: Request, session: DbSession, _user: Reader) -> Response:
    context = web_context(request)
    return render(
        request,
        "ops/system.html",
        {
            "section": "system",
            "version": context.version,
            "db_backend": context.db_backend,
            "config": check_config(context.config_path),
            "daemon": context.daemon_state(),
            "tokens": tokens.list_tokens(session),
            "threshold": triage_queries.cached_threshold(context.extras),
        },
    )


@router.post("/system/tokens/{token_id}/revoke")
def token_revoke(request: Request, session: DbSession, _user: Writer, token_id: int) -> Response:
    tokens.revoke_token(session, str(token_id), web_context(request).clock.now())
    session.commit()
    return _back(request, "/system", "/system")
