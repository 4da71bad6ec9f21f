"""An event's stage timeline replays its reports with the recorder's rule."""

from __future__ import annotations

from datetime import timedelta

from monitor.clock import FrozenClock
from monitor.web.build import WebSurface
from monitor.web.revisions import timeline
from tests.support.webdata import Measure, Report, add_measure


def test_a_block_then_its_lifting_gives_two_announced_steps(
    web: WebSurface, clock: FrozenClock
) -> None:
    measure = Measure(
        country="PK",
        categories=["platform_block"],
        stage="lifted",
        targets=["platform:x"],
        reports=[
            Report("Pakistan blocks X", stage="enforced"),
            Report("X still blocked", stage="enforced", hours_after=2, feed="outlet-b"),
            Report("Pakistan restores X", stage="lifted", hours_after=50, feed="outlet-c"),
        ],
    )
    with web.context.sessions.begin() as session:
        event = add_measure(session, measure, clock.now() - timedelta(days=3))
        steps = timeline(session, event)
    assert [(s.stage, s.announced, s.feed) for s in steps] == [
        ("enforced", True, "outlet-a"),
        ("lifted", True, "outlet-c"),
    ]
    assert steps[1].item_title == "Pakistan restores X"


def test_an_order_in_force_within_a_day_settles_quietly(
    web: WebSurface, clock: FrozenClock
) -> None:
    measure = Measure(
        country="VN",
        categories=["platform_block"],
        stage="enforced",
        reports=[
            Report("Ministry orders block", stage="enacted"),
            Report("Block now in force", stage="enforced", hours_after=3),
        ],
    )
    with web.context.sessions.begin() as session:
        steps = timeline(session, add_measure(session, measure, clock.now()))
    assert [(s.stage, s.announced) for s in steps] == [("enacted", True), ("enforced", False)]


def test_the_stored_stage_wins_when_reports_are_gone(web: WebSurface, clock: FrozenClock) -> None:
    measure = Measure(
        country="IR", categories=["shutdown"], stage="lifted",
        reports=[Report("Internet cut", stage="enforced")],
    )  # fmt: skip
    with web.context.sessions.begin() as session:
        steps = timeline(session, add_measure(session, measure, clock.now()))
    assert [s.stage for s in steps] == ["enforced", "lifted"]
    assert steps[-1].item_id is None
