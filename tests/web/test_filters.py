"""One events filter for pages, API and feeds: parsed strictly, applied on the database."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi import HTTPException

from monitor.clock import FrozenClock
from monitor.web.build import WebSurface
from monitor.web.filters import cursor_of, event_query, parse_event_filter
from tests.support.webdata import Measure, Report, add_measure


def _seed(web: WebSurface, clock: FrozenClock) -> None:
    start = clock.now() - timedelta(days=2)
    measures = [
        Measure("VN", ["platform_block"], "proposed", [Report("Vietnam threatens Facebook")]),
        Measure(
            "PK",
            ["platform_block"],
            "enforced",
            [Report("Pakistan blocks X"), Report("X down", hours_after=1, feed="b")],
        ),  # fmt: skip
        Measure("LA", ["shutdown"], "enacted", [Report("Laos cuts links")], status="dismissed"),
    ]
    with web.context.sessions.begin() as session:
        for n, measure in enumerate(measures):
            add_measure(session, measure, start + timedelta(hours=n))


def _titles(web: WebSurface, params: dict[str, str], clock: FrozenClock) -> list[str]:
    with web.context.sessions() as session:
        query = event_query(parse_event_filter(params, clock.now()))
        return [e.title for e in session.scalars(query)]


def test_filters_select_on_the_database(web: WebSurface, clock: FrozenClock) -> None:
    _seed(web, clock)
    assert _titles(web, {}, clock) == ["Pakistan blocks X", "Vietnam threatens Facebook"]
    assert _titles(web, {"country": "vn"}, clock) == ["Vietnam threatens Facebook"]
    assert _titles(web, {"category": "shutdown", "status": "dismissed"}, clock) == [
        "Laos cuts links"
    ]
    assert _titles(web, {"min_sources": "2"}, clock) == ["Pakistan blocks X"]
    assert _titles(web, {"q": "FACEBOOK"}, clock) == ["Vietnam threatens Facebook"]
    assert _titles(web, {"stage": "enforced,proposed", "since": "1d"}, clock) == []


def test_the_cursor_continues_after_the_last_row(web: WebSurface, clock: FrozenClock) -> None:
    _seed(web, clock)
    event_filter = parse_event_filter({"status": "open,dismissed"}, clock.now())
    with web.context.sessions() as session:
        everything = list(session.scalars(event_query(event_filter)))
        after = cursor_of(event_filter, everything[0])
        rest = list(session.scalars(event_query(event_filter, after)))
    assert [e.id for e in rest] == [e.id for e in everything[1:]]


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"stage": "banned"}, "stage"),
        ({"country": "Vietnam"}, "country"),
        ({"since": "last week"}, "since"),
        ({"sort": "random"}, "sort"),
        ({"min_sources": "many"}, "min_sources"),
    ],
)
def test_a_wrong_value_names_its_parameter(
    params: dict[str, str], named: str, clock: FrozenClock
) -> None:
    with pytest.raises(HTTPException) as raised:
        parse_event_filter(params, clock.now())
    assert raised.value.status_code == 400
    assert str(raised.value.detail).startswith(named)
