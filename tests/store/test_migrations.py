"""The Alembic migration builds exactly the schema the models describe, on both databases."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.exc import OperationalError

from monitor.store.db import make_engine, upgrade, upgrade_in_child
from monitor.store.models import Base


def test_upgrade_creates_every_table(db_url: str) -> None:
    engine = make_engine(db_url)
    tables = set(inspect(engine).get_table_names())
    assert set(Base.metadata.tables) <= tables
    engine.dispose()


def test_models_and_migration_agree(db_url: str) -> None:
    engine = make_engine(db_url)
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    engine.dispose()
    assert diff == []


def test_upgrade_twice_is_harmless(db_url: str) -> None:
    upgrade(db_url)
    engine = make_engine(db_url)
    assert "feeds" in inspect(engine).get_table_names()
    engine.dispose()


def test_the_daemon_migrates_in_a_child_and_hears_its_errors(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    upgrade_in_child(url)
    engine = make_engine(url)
    assert set(Base.metadata.tables) <= set(inspect(engine).get_table_names())
    engine.dispose()
    with pytest.raises(OperationalError):
        upgrade_in_child(f"sqlite:///{tmp_path / 'no-such-dir' / 'x.db'}")


def test_datetimes_round_trip_as_aware_utc(db_url: str) -> None:
    """UTC datetimes come back equal and aware; on SQLite they are stored in the text form
    SQLAlchemy's own DATETIME type writes (the fast bind path must not change the format)."""
    from datetime import UTC, datetime, timedelta, timezone

    from sqlalchemy import insert, select, text
    from sqlalchemy.dialects.sqlite.base import DATETIME

    from monitor.store.models import FeedRow

    hanoi = timezone(timedelta(hours=7))
    moments = [
        datetime(2026, 11, 23, 17, 5, 9, 123456, tzinfo=UTC),
        datetime(2026, 1, 2, 3, 4, 5, tzinfo=hanoi),  # no microseconds, not UTC
        datetime(999, 12, 31, 23, 59, 59, 1, tzinfo=UTC),
    ]
    engine = make_engine(db_url)
    table = FeedRow.__table__
    with engine.begin() as connection:
        connection.execute(
            insert(table),
            [
                {"name": f"f{i}", "url": "http://x.test/", "next_poll_at": moment,
                 "created_at": moment, "interval_s": 60, "enabled": True, "gone": False,
                 "consecutive_failures": 0, "broken_alerted": False}
                for i, moment in enumerate(moments)
            ],
        )  # fmt: skip
    with engine.connect() as connection:
        stored = list(
            connection.execute(select(table.c.next_poll_at).order_by(table.c.id)).scalars()
        )
        assert stored == moments
        assert all(value.utcoffset() == timedelta(0) for value in stored)
        if engine.dialect.name == "sqlite":
            texts = connection.execute(text("SELECT created_at FROM feeds ORDER BY id")).scalars()
            reference = DATETIME().bind_processor(engine.dialect)
            assert reference is not None
            expected = [reference(m.astimezone(UTC).replace(tzinfo=None)) for m in moments]
            assert list(texts) == expected
    engine.dispose()


def test_upgrading_a_database_of_the_first_release_keeps_its_feeds(tmp_path: Path) -> None:
    """0002 adds feeds.moved_to to a database that already holds feeds."""
    from sqlalchemy import text

    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url, "0001")
    engine = make_engine(url)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO feeds (name, url, interval_s, enabled, gone, next_poll_at, "
                "consecutive_failures, broken_alerted, created_at, etag) VALUES ('VnExpress', "
                "'https://vnexpress.net/rss', 900, 1, 0, '2026-11-23 08:00:00', 2, 0, "
                "'2026-11-01 08:00:00', '\"abc\"')"
            )
        )
    upgrade(url)
    with engine.connect() as connection:
        row = connection.execute(
            text("SELECT name, etag, consecutive_failures, moved_to FROM feeds")
        ).one()
    engine.dispose()
    assert tuple(row) == ("VnExpress", '"abc"', 2, None)


def test_downgrading_0002_keeps_what_refers_to_the_feeds(tmp_path: Path) -> None:
    """Dropping feeds.moved_to must not rebuild the table: with foreign keys on, dropping
    the old copy would cascade to every fetch log row and item of every feed."""
    from sqlalchemy import text

    from monitor.store.db import alembic_config

    url = f"sqlite:///{tmp_path / 'down.db'}"
    upgrade(url)
    engine = make_engine(url)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO feeds (id, name, url, interval_s, enabled, gone, next_poll_at, "
                "consecutive_failures, broken_alerted, created_at, moved_to) VALUES (1, 'RFA', "
                "'https://www.rfa.org/feed', 900, 1, 0, '2026-11-23 08:00:00', 0, 0, "
                "'2026-11-01 08:00:00', 'https://www.rfa.org/new-feed')"
            )
        )
        connection.execute(
            text(
                "INSERT INTO fetch_log (feed_id, started_at, outcome, bytes, entries, "
                "new_items, duration_ms) VALUES (1, '2026-11-23 08:00:00', 'ok', 10, 1, 1, 50)"
            )
        )
    from alembic import command

    command.downgrade(alembic_config(url), "0001")
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM fetch_log")).scalar() == 1
        assert connection.execute(text("SELECT name FROM feeds")).scalar() == "RFA"
    upgrade(url)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM fetch_log")).scalar() == 1
    engine.dispose()
