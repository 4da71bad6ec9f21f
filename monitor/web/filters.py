"""The events filter, shared by the events page, the API and feeds out (one query builder).

Parsed from query parameters; a wrong value is a 400 that names the parameter, so a saved
feed URL with a typo says what is wrong instead of quietly showing everything.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from fastapi import HTTPException
from sqlalchemy import Select, String, and_, cast, func, or_, select
from sqlalchemy.sql.elements import ColumnElement

from monitor.config.schema import parse_duration
from monitor.domain import Category, Stage
from monitor.store.models import EventRow

SORTS = {
    "last_change": EventRow.last_seen,
    "first_seen": EventRow.first_seen,
    "sources": EventRow.item_count,
    "score": EventRow.max_score,
}
STATUSES = ("open", "confirmed", "dismissed")
# The default view: what analysts have not dismissed.
DEFAULT_STATUSES = ("open", "confirmed")
CATEGORIES = tuple(c.value for c in Category)
STAGES = tuple(s.value for s in Stage if s.value != "none")


@dataclass(frozen=True, slots=True)
class EventFilter:
    countries: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    stages: tuple[str, ...] = ()
    statuses: tuple[str, ...] = DEFAULT_STATUSES
    since: datetime | None = None
    until: datetime | None = None
    q: str | None = None
    min_sources: int | None = None
    min_score: float | None = None
    sort: str = "last_change"

    def query_params(self) -> dict[str, str]:
        """The filter as query parameters (links to the same view: feeds out, next page)."""
        params: dict[str, str] = {}
        for name, values in (
            ("country", self.countries),
            ("category", self.categories),
            ("stage", self.stages),
        ):
            if values:
                params[name] = ",".join(values)
        if self.statuses != DEFAULT_STATUSES:
            params["status"] = ",".join(self.statuses)
        if self.since is not None:
            params["since"] = self.since.isoformat()
        if self.until is not None:
            params["until"] = self.until.isoformat()
        if self.q:
            params["q"] = self.q
        if self.min_sources is not None:
            params["min_sources"] = str(self.min_sources)
        if self.min_score is not None:
            params["min_score"] = str(self.min_score)
        if self.sort != "last_change":
            params["sort"] = self.sort
        return params


def _listed(name: str, raw: str | None, allowed: tuple[str, ...] | None) -> tuple[str, ...]:
    if not raw:
        return ()
    values = tuple(dict.fromkeys(v.strip() for v in raw.split(",") if v.strip()))
    if allowed is not None:
        wrong = [v for v in values if v not in allowed]
        if wrong:
            raise HTTPException(
                400, f"{name}: unknown {', '.join(wrong)}; use {', '.join(allowed)}"
            )
    return values


def parse_moment(name: str, raw: str | None, now: datetime) -> datetime | None:
    """A duration back from now (7d, 24h) or an ISO date/time; a 400 naming the parameter.
    (Every list that takes a `since`: events, triage, stats.)"""
    if not raw:
        return None
    try:
        return now - parse_duration(raw)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError as exc:
        raise HTTPException(400, f"{name}: {raw!r} is not a duration (7d, 24h) or a date") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _number(name: str, raw: str | None, kind: type[int] | type[float]) -> Any:
    if raw is None or raw == "":
        return None
    try:
        return kind(raw)
    except ValueError as exc:
        raise HTTPException(400, f"{name}: {raw!r} is not a number") from exc


def parse_event_filter(params: dict[str, str], now: datetime) -> EventFilter:
    """The filter from query parameters (multi-valued ones comma-separated)."""
    countries = tuple(c.upper() for c in _listed("country", params.get("country"), None))
    bad = [c for c in countries if len(c) != 2 or not c.isalpha()]
    if bad:
        raise HTTPException(400, f"country: {', '.join(bad)} is not an ISO alpha-2 code")
    sort = params.get("sort") or "last_change"
    if sort not in SORTS:
        raise HTTPException(400, f"sort: unknown {sort!r}; use {', '.join(SORTS)}")
    statuses = _listed("status", params.get("status"), STATUSES) or DEFAULT_STATUSES
    return EventFilter(
        countries=countries,
        categories=_listed("category", params.get("category"), CATEGORIES),
        stages=_listed("stage", params.get("stage"), STAGES),
        statuses=statuses,
        since=parse_moment("since", params.get("since"), now),
        until=parse_moment("until", params.get("until"), now),
        q=(params.get("q") or "").strip() or None,
        min_sources=_number("min_sources", params.get("min_sources"), int),
        min_score=_number("min_score", params.get("min_score"), float),
        sort=sort,
    )


def _conditions(event_filter: EventFilter) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [EventRow.status.in_(event_filter.statuses)]
    if event_filter.countries:
        conditions.append(EventRow.country.in_(event_filter.countries))
    if event_filter.stages:
        conditions.append(EventRow.stage.in_(event_filter.stages))
    if event_filter.categories:
        # categories is a JSON list; its text holds each name in quotes on both engines.
        as_text = cast(EventRow.categories, String)
        conditions.append(or_(*[as_text.contains(f'"{c}"') for c in event_filter.categories]))
    if event_filter.since is not None:
        conditions.append(EventRow.last_seen >= event_filter.since)
    if event_filter.until is not None:
        conditions.append(EventRow.first_seen <= event_filter.until)
    if event_filter.q:
        conditions.append(func.lower(EventRow.title).contains(event_filter.q.lower()))
    if event_filter.min_sources is not None:
        conditions.append(EventRow.item_count >= event_filter.min_sources)
    if event_filter.min_score is not None:
        conditions.append(EventRow.max_score >= event_filter.min_score)
    return conditions


def event_query(event_filter: EventFilter, after: list[Any] | None = None) -> Select[EventRow]:
    """Events matching the filter, in its sort order (newest/largest first, then id).

    `after` is a cursor's sort key [value, id]: the rows that come after it.
    """
    column = SORTS[event_filter.sort]
    statement = select(EventRow).where(*_conditions(event_filter))
    if after is not None:
        value, last_id = _cursor_value(event_filter.sort, after)
        statement = statement.where(
            or_(column < value, and_(column == value, EventRow.id < last_id))
        )
    return statement.order_by(column.desc(), EventRow.id.desc())


def cursor_of(event_filter: EventFilter, event: EventRow) -> list[Any]:
    value = getattr(event, SORTS[event_filter.sort].key)
    return [value.isoformat() if isinstance(value, datetime) else value, event.id]


def _cursor_value(sort: str, after: list[Any]) -> tuple[Any, int]:
    try:
        raw, last_id = after
        value: Any = datetime.fromisoformat(raw) if sort in ("last_change", "first_seen") else raw
        return value, int(last_id)
    except (TypeError, ValueError) as exc:
        raise HTTPException(400, "cursor: does not belong to this sort order") from exc


def with_sort(event_filter: EventFilter, sort: str) -> EventFilter:
    return replace(event_filter, sort=sort)
