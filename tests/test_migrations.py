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
