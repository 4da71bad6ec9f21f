"""Server-drawn charts: escaped text, a title on the chart and on each mark, bars placed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from monitor.web.country_queries import stage_spans, swimlanes
from monitor.web.overview_queries import StageMatrix
from monitor.web.revisions import StageStep
from monitor.web.svg import sparkline, stacked_matrix, swimlane

START = datetime(2026, 9, 1, tzinfo=UTC)
END = START + timedelta(days=90)


def _step(n: int, stage: str, days: float) -> StageStep:
    return StageStep(n, stage, START + timedelta(days=days), True, None, None, None, None)


def test_a_sparkline_has_a_bar_per_day_and_a_title() -> None:
    chart = str(sparkline([0, 3, 1], "VN: 4 in 3 days"))
    assert chart.count("<rect") == 3 and "<title>VN: 4 in 3 days</title>" in chart
    assert "<title>3</title>" in chart


def test_the_matrix_chart_labels_each_part() -> None:
    matrix = StageMatrix(None, ("shutdown", "throttling"), ("proposed", "enforced"),
                         {("shutdown", "enforced"): 4, ("shutdown", "proposed"): 1})  # fmt: skip
    chart = str(stacked_matrix(matrix, {"shutdown": "shut <down>"}))
    assert "shut &lt;down&gt;" in chart and "<down>" not in chart
    assert "shut &lt;down&gt;, enforced: 4" in chart and "throttling" not in chart


def test_spans_run_to_the_end_until_lifted() -> None:
    ongoing = stage_spans([_step(0, "enacted", 10), _step(1, "enforced", 20)], START, END)
    assert [(s.stage, s.end) for s in ongoing] == [
        ("enacted", START + timedelta(days=20)),
        ("enforced", END),
    ]
    lifted = stage_spans([_step(0, "enforced", -5), _step(1, "lifted", 30)], START, END)
    assert lifted[0].start == START  # clipped to the window
    assert lifted[-1].stage == "lifted" and lifted[-1].end < END


class _Event:
    def __init__(self, event_id: int, first_day: float, categories: list[str]) -> None:
        self.id = event_id
        self.title = f"<b>{event_id}</b>"
        self.stage = "enforced"
        self.categories = categories
        self.first_seen = START + timedelta(days=first_day)


def test_overlapping_events_take_separate_rows_and_titles_are_escaped() -> None:
    events = [_Event(1, 10, ["shutdown"]), _Event(2, 20, ["shutdown", "throttling"])]
    steps = {1: [_step(0, "enforced", 10)], 2: [_step(0, "enforced", 20)]}
    lanes = swimlanes(events, steps, START, END)  # type: ignore[arg-type]
    assert [(lane.category, lane.rows) for lane in lanes] == [("shutdown", 2), ("throttling", 1)]
    chart = str(swimlane(lanes, START, END, {}, "VN <lanes>"))
    assert "<title>VN &lt;lanes&gt;</title>" in chart and "<b>" not in chart
    assert '<a href="/events/2">' in chart and ">enforced</text>" in chart
