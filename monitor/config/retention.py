"""The `retention:` section of feeds.yaml: how long collected rows are kept.

The prune job (`monitor.store.retention`) deletes by age in small batches, each its own short
transaction, so polling never waits long for the database. What the analysts' work rests on
is never deleted by age: items grouped into an event, items an analyst gave feedback on or an
alert points to, and events themselves. Every age has a floor below which the daemon would
still read the rows (the silence baseline, the Sources page's windows, the dedup keys of
entries a feed still carries).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from monitor.config.values import between, parse_duration

_TEN_YEARS = timedelta(days=3650)


# The Sources page counts polls over 7 days and reads a feed's log from there.
FetchLogAge = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    AfterValidator(between(timedelta(days=7), _TEN_YEARS)),
]
# Items are read back for 30 days (Sources page) and up to 90 (silence baseline); an entry
# a feed still carries whose dedup key was pruned would come back as a new item.
ItemAge = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    AfterValidator(between(timedelta(days=90), _TEN_YEARS)),
]
# Triage shows the last 7 days of assessments.
AssessmentAge = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    AfterValidator(between(timedelta(days=7), _TEN_YEARS)),
]
# The outbox is also the record that an alert was sent: keep it well past retries and digests.
AlertAge = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    AfterValidator(between(timedelta(days=30), _TEN_YEARS)),
]
# Above one minute a prune run could hold the polling writers up; below 1 s it does no work.
Budget = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    AfterValidator(between(timedelta(seconds=1), timedelta(minutes=10))),
]


class RetentionSpec(BaseModel):
    """Defaults: a year of items, three months of the classifier's reasons for what it
    dismissed, a month of fetch log (as before this section existed), half a year of alerts."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = True
    fetch_log: FetchLogAge = timedelta(days=30)
    items: ItemAge = timedelta(days=365)
    assessments: AssessmentAge = timedelta(days=90)
    alerts: AlertAge = timedelta(days=180)
    # 5,000 fetch-log rows: about 65 ms on SQLite, 20 ms on PostgreSQL (bench_prune); a
    # poll's commit on SQLite waits at most about one batch for the writer lock.
    batch_size: Annotated[int, Field(ge=100, le=100_000)] = 5_000
    # A run that finds months of backlog (the first run on an old database) stops after
    # this and goes on at the next run, an hour later.
    time_budget: Budget = timedelta(seconds=60)
