"""Charts drawn on the server as inline SVG: no JavaScript, no chart library.

Every chart carries a `<title>` (what screen readers announce) and each mark its own
`<title>` (a tooltip with the number); stages are told apart by text labels and the
templates print the same numbers in a table beside them, so colour is never the only signal.
All text that reaches the markup goes through `escape`: titles come from the internet.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from markupsafe import Markup, escape

from monitor.web.country_queries import Lane
from monitor.web.overview_queries import StageMatrix

STAGE_CLASS = "svg-stage-"


def _svg(
    width: int,
    height: int,
    title: str,
    body: Sequence[str],
    css: str = "chart",
    role: str = "img",
) -> Markup:
    # A chart with links in it is a group, not an image: an image's parts are not reachable.
    label = f' aria-label="{escape(title)}"' if role != "img" else ""
    head = (
        f'<svg class="{css}" role="{role}"{label} xmlns="http://www.w3.org/2000/svg" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}">'
        f"<title>{escape(title)}</title>"
    )
    return Markup(head + "".join(body) + "</svg>")


def sparkline(values: Sequence[int], title: str, width: int = 112, height: int = 24) -> Markup:
    """One bar per value (per day); an empty day keeps a 1 px baseline so gaps read as zero."""
    if not values:
        return _svg(width, height, title, [], css="spark")
    top = max(values) or 1
    step = width / len(values)
    bars = []
    for n, value in enumerate(values):
        bar = max(1.0, (height - 2) * value / top) if value else 1.0
        bars.append(
            f'<rect class="spark-bar" x="{n * step:.1f}" y="{height - bar:.1f}" '
            f'width="{max(step - 1, 1):.1f}" height="{bar:.1f}"><title>{value}</title></rect>'
        )
    return _svg(width, height, title, bars, css="spark")


def stacked_matrix(matrix: StageMatrix, labels: dict[str, str], width: int = 520) -> Markup:
    """A horizontal bar per category, split by stage, each part labelled with its count."""
    label_w, bar_h, gap = 160, 18, 6
    rows = [c for c in matrix.categories if matrix.row_total(c) > 0]
    height = max(1, len(rows)) * (bar_h + gap) + 4
    widest = max((matrix.row_total(c) for c in rows), default=0) or 1
    scale = (width - label_w - 40) / widest
    body: list[str] = []
    for n, category in enumerate(rows):
        y = n * (bar_h + gap) + 2
        name = escape(labels.get(category, category))
        body.append(f'<text class="label" x="0" y="{y + bar_h - 5}">{name}</text>')
        x = float(label_w)
        for stage in matrix.stages:
            count = matrix.count(category, stage)
            if not count:
                continue
            part = count * scale
            tip = escape(f"{labels.get(category, category)}, {stage}: {count}")
            body.append(
                f'<rect class="{STAGE_CLASS}{escape(stage)}" x="{x:.1f}" y="{y}" '
                f'width="{part:.1f}" height="{bar_h}"><title>{tip}</title></rect>'
            )
            if part >= 18:
                body.append(
                    f'<text class="on-bar" x="{x + 3:.1f}" y="{y + bar_h - 5}">{count}</text>'
                )
            x += part
        total = matrix.row_total(category)
        body.append(f'<text class="label" x="{x + 4:.1f}" y="{y + bar_h - 5}">{total}</text>')
    title = "Events by category, split by stage"
    return _svg(width, height, title, body)


def swimlane(
    lanes: Sequence[Lane],
    start: datetime,
    end: datetime,
    labels: dict[str, str],
    title: str,
    width: int = 900,
) -> Markup:
    """A lane per category, time running left to right; each event a bar whose parts are
    the stages it went through, with the stage written on parts wide enough to hold it."""
    label_w, row_h, lane_gap, axis_h = 150, 16, 10, 18
    span_s = max((end - start).total_seconds(), 1.0)
    plot_w = width - label_w - 4

    def x_of(moment: datetime) -> float:
        return label_w + plot_w * (moment - start).total_seconds() / span_s

    body: list[str] = []
    y = axis_h
    for lane in lanes:
        lane_h = lane.rows * row_h
        name = escape(labels.get(lane.category, lane.category))
        body.append(f'<text class="label" x="0" y="{y + 12}">{name}</text>')
        body.append(
            f'<line class="lane" x1="{label_w}" x2="{width}" y1="{y + lane_h + lane_gap / 2}" '
            f'y2="{y + lane_h + lane_gap / 2}"/>'
        )
        for bar in lane.bars:
            top = y + bar.row * row_h + 1
            body.append(f'<a href="/events/{bar.event_id}">')
            for part in bar.spans:
                x0, x1 = x_of(part.start), x_of(part.end)
                part_w = max(x1 - x0, 2.0)
                tip = escape(f"{bar.title} — {part.stage} from {part.start:%Y-%m-%d}")
                body.append(
                    f'<rect class="{STAGE_CLASS}{escape(part.stage)}" x="{x0:.1f}" y="{top}" '
                    f'width="{part_w:.1f}" height="{row_h - 3}"><title>{tip}</title></rect>'
                )
                if part_w > 7 * len(part.stage):
                    body.append(
                        f'<text class="on-bar" x="{x0 + 3:.1f}" y="{top + row_h - 6}">'
                        f"{escape(part.stage)}</text>"
                    )
            body.append("</a>")
        y += lane_h + lane_gap
    body.append(f'<text class="axis" x="{label_w}" y="12">{start:%Y-%m-%d}</text>')
    body.append(f'<text class="axis" x="{width}" y="12" text-anchor="end">{end:%Y-%m-%d}</text>')
    return _svg(width, max(y, axis_h + row_h), title, body, role="group")
