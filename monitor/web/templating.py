"""Jinja2 helpers every page uses: dates, relative times, stage and category labels."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from fastapi import Request
from jinja2 import Environment
from starlette.responses import Response

from monitor.countries import country_name
from monitor.domain import Category, Stage
from monitor.web.source_queries import failing_feed_count

STAGE_ORDER = ("proposed", "enacted", "enforced", "lifted")
CATEGORY_LABELS = {c.value: c.value.replace("_", " ") for c in Category}
STAGE_LABELS = {s.value: s.value for s in Stage}
# The nav badge's failing-feeds count is read at most this often (per app, not per page).
NAV_COUNT_TTL_S = 10.0


def render(
    request: Request,
    name: str,
    context: Mapping[str, Any],
    *,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """A page from its template; the request and the clock's now are always in the context."""
    templates = request.app.state.templates
    values = {
        "now": request.app.state.web.clock.now(),
        "nav_failing": nav_failing(request),
        **context,
    }
    response: Response = templates.TemplateResponse(
        request, name, values, status_code=status_code, headers=dict(headers or {})
    )
    return response


def nav_failing(request: Request) -> int:
    """Failing feeds for the nav badge, cached on the app state for NAV_COUNT_TTL_S.

    A monotonic clock, not the app's (frozen in tests, and a wall-clock jump must not pin the
    cache); a race between two threads only costs one extra count.
    """
    state = request.app.state
    cached: tuple[float, int] | None = getattr(state, "nav_failing", None)
    if cached is not None and time.monotonic() - cached[0] < NAV_COUNT_TTL_S:
        return cached[1]
    with state.web.sessions() as session:
        count = failing_feed_count(session)
    state.nav_failing = (time.monotonic(), count)
    return count


def when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value is not None else "–"


def ago(value: datetime | None, now: datetime) -> str:
    """'5 min ago', '3 h ago', '2 d ago': how analysts read freshness at a glance."""
    if value is None:
        return "never"
    seconds = int((now - value).total_seconds())
    if seconds < 0:
        return "in " + ago(now, value).removesuffix(" ago")
    if seconds < 90:
        return f"{seconds} s ago"
    if seconds < 90 * 60:
        return f"{seconds // 60} min ago"
    if seconds < 36 * 3600:
        return f"{seconds // 3600} h ago"
    return f"{seconds // 86400} d ago"


def country_label(code: str | None) -> str:
    if not code:
        return "no country"
    name = country_name(code)
    return f"{name} ({code})" if name and name != code else code


def add_template_helpers(env: Environment, target_label: Callable[[str], str]) -> None:
    """`target_label`: 'X (Twitter)' for 'platform:x' (the app's lexicon, read when first
    needed)."""
    env.filters["target"] = target_label
    env.filters["when"] = when
    env.filters["country"] = country_label
    env.filters["category"] = lambda value: CATEGORY_LABELS.get(value, value)
    env.globals["ago"] = ago
    env.globals["STAGE_ORDER"] = STAGE_ORDER
