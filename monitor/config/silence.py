"""The `silence:` section of feeds.yaml: when a country's sources going quiet is a signal.

A source is silent when it stops answering (failures for `unanswered_intervals` of its
polling intervals since its last success) or stops publishing (no new item for `gap_factor`
times the longest gap between its items over `baseline`, never less than two intervals).
A country is dark when at least `share` of its sources are silent while the other
countries' sources are not (at most `others_max_share` silent): our own network is then
working, so the quiet is theirs. The detector is `monitor.signals.silence`.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from monitor.config.values import between, parse_duration

Baseline = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    AfterValidator(between(timedelta(days=1), timedelta(days=90))),
]
Hold = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    AfterValidator(between(timedelta(0), timedelta(days=1))),
]


class SilenceSpec(BaseModel):
    """Defaults tuned for a few feeds per country polled every 5-30 minutes."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = True
    # Two feeds going quiet together is too often chance (one host, one CDN) to alarm on.
    min_feeds: Annotated[int, Field(ge=2)] = 3
    share: Annotated[float, Field(gt=0.0, le=1.0)] = 0.6
    # The "other countries are fine" test: more than this share of them silent means the
    # trouble is ours (our network, our resolver), not one country's.
    others_max_share: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.25
    unanswered_intervals: Annotated[int, Field(ge=1, le=100)] = 3
    gap_factor: Annotated[float, Field(ge=1.0, le=20.0)] = 1.5
    baseline: Baseline = timedelta(days=28)
    # Fewer items than this in the baseline window: too little to know the source's rhythm,
    # so it is judged only on answering.
    min_items: Annotated[int, Field(ge=2)] = 5
    open_after: Hold = timedelta(minutes=15)
    close_after: Hold = timedelta(minutes=30)
