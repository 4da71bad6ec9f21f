"""Shared fixtures: databases (a real SQLite file and a real PostgreSQL server), clocks, paths."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from monitor.clock import FrozenClock
from tests.support.feedserver import FeedServer
from tests.support.pg import PostgresServer, find_pg_bin
from tests.support.receivers import SmtpReceiver, WebhookReceiver

REPO = Path(__file__).resolve().parents[1]


def shared_dir() -> Path:
    """The read-only ../shared folder (overridable with MONITOR_SHARED_DIR)."""
    return Path(os.environ.get("MONITOR_SHARED_DIR", REPO.parent / "shared"))


@pytest.fixture
def shared() -> Path:
    path = shared_dir()
    if not path.is_dir():
        pytest.skip(f"shared material not found at {path} (set MONITOR_SHARED_DIR)")
    return path


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(datetime(2026, 11, 23, 8, 0, tzinfo=UTC))


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    bin_dir = find_pg_bin()
    if bin_dir is None:
        if os.environ.get("MONITOR_REQUIRE_POSTGRES"):
            pytest.fail("MONITOR_REQUIRE_POSTGRES is set but no PostgreSQL server binaries exist")
        pytest.skip("PostgreSQL server binaries not found (install the postgresql package)")
    server = PostgresServer(bin_dir)
    server.start()
    yield server
    server.destroy()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, migrated database: a SQLite file, then the same test on real PostgreSQL."""
    from monitor.store.db import upgrade

    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'monitor.db'}"
    else:
        server: PostgresServer = request.getfixturevalue("postgres_server")
        url = server.create_database()
    upgrade(url)
    return url


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    """A real HTTP server on 127.0.0.1 serving feeds."""
    with FeedServer() as server:
        yield server


@pytest.fixture
def smtp() -> Iterator[SmtpReceiver]:
    """A real SMTP server on 127.0.0.1 (aiosmtpd)."""
    receiver = SmtpReceiver()
    receiver.start()
    yield receiver
    if receiver.running:
        receiver.stop()


@pytest.fixture
def webhook() -> Iterator[WebhookReceiver]:
    """A real HTTP endpoint on 127.0.0.1 receiving Apprise json:// posts."""
    with WebhookReceiver() as receiver:
        yield receiver
