"""Dates as feeds write them: RFC 822, ISO 8601, a few local formats, feedparser's structs;
always returned in UTC (a date without a zone is read in the feed's zone)."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, tzinfo
from email.utils import parsedate_to_datetime
from typing import Any

from monitor.domain import RawEntry

__all__ = ["entry_date", "newest_entries", "parse_date"]

_SHORT_OFFSET = re.compile(r"([+-])(\d{2})$")
_COLON_OFFSET = re.compile(r"([+-]\d{2}):(\d{2})$")
_LOCAL_FORMATS = (
    "%m/%d/%Y %I:%M:%S %p",
    "%m/%d/%Y %I:%M %p",
    "%m/%d/%Y %H:%M:%S",
    "%d/%m/%Y %H:%M:%S",
    "%d/%m/%Y %H:%M",
    "%d-%m-%Y %H:%M:%S",
    "%Y/%m/%d %H:%M:%S",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d",
)


def _to_utc(value: datetime, assume_tz: tzinfo) -> datetime:
    """An aware UTC datetime; naive values are read in `assume_tz`."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=assume_tz)
    return value.astimezone(UTC)


def _rfc822(text: str) -> datetime | None:
    """RFC 822 dates, including two-digit years and '+07' / '+07:00' offsets."""
    fixed = _COLON_OFFSET.sub(r"\1\2", text)
    fixed = _SHORT_OFFSET.sub(r"\g<1>\g<2>00", fixed)
    try:
        return parsedate_to_datetime(fixed)
    except (TypeError, ValueError, IndexError):
        return None


def _iso(text: str) -> datetime | None:
    """ISO 8601 / RFC 3339, including 'Z' and '+07' offsets."""
    fixed = _SHORT_OFFSET.sub(
        r"\g<1>\g<2>:00", text.replace(" ", "T", 1) if "T" not in text else text
    )
    try:
        return datetime.fromisoformat(fixed)
    except ValueError:
        return None


def _local(text: str) -> datetime | None:
    """Zone-less local formats seen in the wild (e.g. '8/23/2026 5:20:00 AM')."""
    for fmt in _LOCAL_FORMATS:
        try:
            return datetime.strptime(text, fmt)
        except ValueError:
            continue
    return None


def parse_date(text: str | None, *, assume_tz: tzinfo = UTC) -> datetime | None:
    """Parse a feed date string to aware UTC; zone-less times are read in `assume_tz`."""
    if not text:
        return None
    text = " ".join(text.split())[:100]
    if not text:
        return None
    # ISO 8601 starts with the year; trying it first on an RFC 822 date ("Mon, 23 Nov ...")
    # would only raise and catch an exception per entry.
    attempts = (_iso, _rfc822, _local) if text[:4].isdigit() else (_rfc822, _iso, _local)
    for attempt in attempts:
        value = attempt(text)
        if value is not None:
            try:
                return _to_utc(value, assume_tz)
            except (OverflowError, ValueError):
                return None
    return None


def _struct_to_utc(value: Any) -> datetime | None:
    """feedparser's UTC struct_time to an aware datetime."""
    if not isinstance(value, time.struct_time):
        return None
    try:
        return datetime(*value[:6], tzinfo=UTC)
    except (ValueError, OverflowError):
        return None


def entry_date(entry: Mapping[str, Any], assume_tz: tzinfo) -> datetime | None:
    """The best publication date of a feedparser entry."""
    for key in ("published", "updated", "created"):
        raw = entry.get(key)
        value = parse_date(raw, assume_tz=assume_tz) if isinstance(raw, str) else None
        value = value or _struct_to_utc(entry.get(key + "_parsed"))
        if value is not None:
            return value
    return None


def newest_entries(entries: list[RawEntry], max_entries: int) -> tuple[RawEntry, ...]:
    """Entries newest first (undated ones after, in document order), at most max_entries."""
    floor = datetime.min.replace(tzinfo=UTC) + timedelta(days=1)
    ordered = sorted(entries, key=lambda e: e.published or floor, reverse=True)
    return tuple(ordered[: max(0, max_entries)])
