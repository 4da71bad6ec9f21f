"""SQLAlchemy 2.0 typed models: the whole persistent state of monitor.

feeds.yaml says *which* feeds and routes exist; these tables hold their *state* (validators,
next poll time, failures), what was collected, what the classifier said, the events that group
items into measures, and the alert outbox.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def _as_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("naive datetime given to a UTC column")
    return value.astimezone(UTC)


def utc_as_read(value: datetime) -> datetime:
    """A stored time as an aware UTC datetime (SQLite gives it back naive, in UTC)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Stores aware UTC datetimes; SQLite hands back naive ones, so re-attach UTC on read."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else _as_utc(value)

    def bind_processor(self, dialect: Dialect) -> Callable[[datetime | None], Any] | None:
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)

        # SQLite's DATETIME formats each value through a dict and %-formatting; a first poll
        # binds a hundred thousand datetimes. isoformat writes the same text in one C call,
        # and the last value's text is kept: most rows of a batch carry the same `now`.
        last: tuple[datetime | None, str | None] = (None, None)

        def to_sqlite_text(value: datetime | None) -> str | None:
            nonlocal last
            if value is None:
                return None
            seen, text = last
            if value is seen:
                return text
            text = _as_utc(value).replace(tzinfo=None).isoformat(" ", "microseconds")
            last = (value, text)
            return text

        return to_sqlite_text

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else utc_as_read(value)


class Base(DeclarativeBase):
    """Declarative base with stable constraint names (Alembic batch mode needs them)."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON, list[str]: JSON}


class FeedRow(Base):
    """One configured feed and its polling state."""

    __tablename__ = "feeds"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    url: Mapped[str] = mapped_column(Text)
    country: Mapped[str | None] = mapped_column(String(2))
    language: Mapped[str | None] = mapped_column(String(8))
    interval_s: Mapped[int] = mapped_column(Integer, default=900)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    gone: Mapped[bool] = mapped_column(Boolean, default=False)
    etag: Mapped[str | None] = mapped_column(Text)
    last_modified: Mapped[str | None] = mapped_column(Text)
    body_hash: Mapped[str | None] = mapped_column(String(64))
    next_poll_at: Mapped[datetime]
    lease_until: Mapped[datetime | None]
    # Who holds the lease (host:pid:tag of a `monitor run`): renewals, releases and stores
    # touch only their own, and an operator can tell which replica is polling a feed.
    lease_holder: Mapped[str | None] = mapped_column(String(200))
    last_polled_at: Mapped[datetime | None]
    last_success_at: Mapped[datetime | None]
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    last_error_kind: Mapped[str | None] = mapped_column(String(40))
    last_error: Mapped[str | None] = mapped_column(Text)
    malformed: Mapped[str | None] = mapped_column(Text)
    # Where the URL now redirects for good (301/308): the admins should update feeds.yaml.
    moved_to: Mapped[str | None] = mapped_column(Text)
    broken_alerted: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime]

    __table_args__ = (Index("ix_feeds_due", "enabled", "next_poll_at"),)


# A fetch log outcome and poll status: not asked, its host asked for a wait (a 429).
HELD_BACK = "held_back"


class FetchLogRow(Base):
    """One poll of one feed: what happened and how long it took."""

    __tablename__ = "fetch_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    feed_id: Mapped[int] = mapped_column(ForeignKey("feeds.id", ondelete="CASCADE"), index=True)
    started_at: Mapped[datetime] = mapped_column(index=True)
    outcome: Mapped[str] = mapped_column(String(20))  # ok, not_modified, error, held_back
    http_status: Mapped[int | None]
    bytes: Mapped[int] = mapped_column(Integer, default=0)
    entries: Mapped[int] = mapped_column(Integer, default=0)
    new_items: Mapped[int] = mapped_column(Integer, default=0)
    duration_ms: Mapped[int] = mapped_column(Integer, default=0)
    error_kind: Mapped[str | None] = mapped_column(String(40))
    error: Mapped[str | None] = mapped_column(Text)


class EventRow(Base):
    """One government measure, as reported by one or more items."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(primary_key=True)
    country: Mapped[str | None] = mapped_column(String(2), index=True)
    categories: Mapped[list[str]]
    stage: Mapped[str] = mapped_column(String(12))
    title: Mapped[str] = mapped_column(Text)
    fingerprint: Mapped[bytes] = mapped_column(LargeBinary)
    first_seen: Mapped[datetime]
    last_seen: Mapped[datetime] = mapped_column(index=True)
    item_count: Mapped[int] = mapped_column(Integer, default=1)
    max_score: Mapped[float] = mapped_column(Float, default=0.0)
    # What the measure acts on ("platform:x", "network:internet", "region:manipur"): part of
    # its identity, with country, category and time (monitor.events.targets).
    targets: Mapped[list[str]] = mapped_column(default=list)
    # When the stage last moved: a report older than that cannot move it back.
    stage_changed_at: Mapped[datetime | None]
    # What the analysts said of it (monitor.store.feedback): open, confirmed or dismissed.
    status: Mapped[str] = mapped_column(String(12), default="open", server_default="open")

    # The newest events of one country: the candidates for a stage follow-up.
    __table_args__ = (Index("ix_events_country_last_seen", "country", "last_seen"),)


class EventBandRow(Base):
    """LSH band keys of an event's text fingerprint: candidate lookup without a full scan."""

    __tablename__ = "event_bands"

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"))
    band_key: Mapped[str] = mapped_column(String(40))

    __table_args__ = (
        UniqueConstraint("event_id", "band_key", name="uq_event_bands_event_band"),
        # Covering: the candidate query reads the event ids filed under a key from the index
        # alone (a crowded key holds thousands).
        Index("ix_event_bands_band_key_event_id", "band_key", "event_id"),
    )


class ItemRow(Base):
    """A collected news item, stored once however many feeds carry it."""

    __tablename__ = "items"

    id: Mapped[int] = mapped_column(primary_key=True)
    feed_id: Mapped[int] = mapped_column(ForeignKey("feeds.id", ondelete="CASCADE"), index=True)
    guid: Mapped[str] = mapped_column(Text)
    url: Mapped[str | None] = mapped_column(Text, index=True)
    title: Mapped[str] = mapped_column(Text)
    summary: Mapped[str] = mapped_column(Text)
    language: Mapped[str | None] = mapped_column(String(8))
    published: Mapped[datetime] = mapped_column(index=True)
    fetched_at: Mapped[datetime] = mapped_column(index=True)
    content_hash: Mapped[str] = mapped_column(String(64), index=True)
    event_id: Mapped[int | None] = mapped_column(
        ForeignKey("events.id", ondelete="SET NULL"), index=True
    )
    source_count: Mapped[int] = mapped_column(Integer, default=1)


class ItemSourceRow(Base):
    """Each (feed, guid) that carried an item: dedup key and the list of its sources."""

    __tablename__ = "item_sources"

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), index=True)
    feed_id: Mapped[int] = mapped_column(ForeignKey("feeds.id", ondelete="CASCADE"))
    guid: Mapped[str] = mapped_column(Text)
    url: Mapped[str | None] = mapped_column(Text)
    seen_at: Mapped[datetime]

    __table_args__ = (UniqueConstraint("feed_id", "guid", name="uq_item_sources_feed_guid"),)


class AssessmentRow(Base):
    """The classifier's verdict on an item, kept with its reasons."""

    __tablename__ = "assessments"

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(
        ForeignKey("items.id", ondelete="CASCADE"), unique=True, index=True
    )
    relevant: Mapped[bool] = mapped_column(Boolean, index=True)
    score: Mapped[float] = mapped_column(Float)
    categories: Mapped[list[str]]
    country: Mapped[str | None] = mapped_column(String(2))
    stage: Mapped[str] = mapped_column(String(12))
    matched_terms: Mapped[list[str]]
    evidence: Mapped[list[str]]
    model_version: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(index=True)


class FeedbackRow(Base):
    """An operator's verdict on an item, learned from by the next `monitor train`."""

    __tablename__ = "feedback"

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), index=True)
    relevant: Mapped[bool] = mapped_column(Boolean)
    categories: Mapped[list[str]]
    country: Mapped[str | None] = mapped_column(String(2))
    stage: Mapped[str | None] = mapped_column(String(12))
    created_at: Mapped[datetime]


class AlertRow(Base):
    """The outbox: one alert for one route, written in the transaction that flagged it."""

    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(primary_key=True)
    route: Mapped[str] = mapped_column(String(200), index=True)
    # Idempotency key: (route, dedup_key) is unique, so no process can queue the same
    # (route, event, kind) twice, even when several share one PostgreSQL database.
    dedup_key: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20))
    event_id: Mapped[int | None] = mapped_column(
        ForeignKey("events.id", ondelete="SET NULL"), index=True
    )
    # Indexed: deleting an item (retention) sets this to NULL, which must not scan the outbox.
    item_id: Mapped[int | None] = mapped_column(
        ForeignKey("items.id", ondelete="SET NULL"), index=True
    )
    feed_id: Mapped[int | None] = mapped_column(ForeignKey("feeds.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(12), index=True)  # see alerts.outbox
    payload: Mapped[dict[str, Any]]
    due_at: Mapped[datetime] = mapped_column(index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_until: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(index=True)
    sent_at: Mapped[datetime | None]
    digest_id: Mapped[int | None] = mapped_column(Integer)

    __table_args__ = (UniqueConstraint("route", "dedup_key", name="uq_alerts_route_dedup"),)


class RouteStateRow(Base):
    """Per-route memory: when its last digest went out."""

    __tablename__ = "route_state"

    route: Mapped[str] = mapped_column(String(200), primary_key=True)
    last_digest_at: Mapped[datetime | None]
    next_digest_at: Mapped[datetime | None]
    # A hash of the schedule (cron and timezone) next_digest_at was computed for: an edited
    # schedule takes effect at once, not after one more period of the old one.
    digest_schedule: Mapped[str | None] = mapped_column(String(200))


class ApiTokenRow(Base):
    """A named access token for the web surface; only its SHA-256 is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # Comma-separated: read, write, feeds, metrics (monitor.store.tokens.SCOPES).
    scopes: Mapped[str] = mapped_column(String(100))
    # A first-run login link works once; the browser session it opened lives on.
    one_time: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None]
    used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class AppSecretRow(Base):
    """Secrets the processes sharing this database must agree on (the cookie signing key)."""

    __tablename__ = "app_secrets"

    name: Mapped[str] = mapped_column(String(60), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]


class CorroborationRow(Base):
    """One network-measurement service's verdict on an event at one check (monitor.signals)."""

    __tablename__ = "corroborations"

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), index=True)
    service: Mapped[str] = mapped_column(String(20))  # ooni, ioda, radar
    checked_at: Mapped[datetime]
    # corroborated, partial, not_corroborated, no_data, unavailable, not_checked
    verdict: Mapped[str] = mapped_column(String(20))
    # The measure was in place before the report (a long-standing block), by the baseline.
    before_report: Mapped[bool] = mapped_column(Boolean, default=False)
    summary: Mapped[str] = mapped_column(Text)  # one line for people, with its figures
    figures: Mapped[dict[str, Any]]
    link: Mapped[str | None] = mapped_column(Text)
    attribution: Mapped[str] = mapped_column(Text)
    # When this service looks at the event again (+6 h, +24 h); None: no more checks.
    next_check_at: Mapped[datetime | None] = mapped_column(index=True)


class SilenceSignalRow(Base):
    """Most of a country's sources gone quiet at once: a possible shutdown, until they return."""

    __tablename__ = "silence_signals"

    id: Mapped[int] = mapped_column(primary_key=True)
    country: Mapped[str] = mapped_column(String(2), index=True)
    opened_at: Mapped[datetime]
    silent_since: Mapped[datetime]
    closed_at: Mapped[datetime | None]
    feeds_total: Mapped[int] = mapped_column(Integer)
    feeds_silent: Mapped[int] = mapped_column(Integer)
    detail: Mapped[dict[str, Any]]
    # Since when the country's sources have been back: it closes after silence.close_after,
    # so one good poll in the middle of a shutdown does not end it.
    clearing_since: Mapped[datetime | None]
