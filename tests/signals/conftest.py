"""Fixtures for the corroboration tests: a replay server, the recordings, a database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.signals.replay import ReplayServer


@pytest.fixture
def replay() -> Iterator[ReplayServer]:
    with ReplayServer() as server:
        yield server


@pytest.fixture
def signals_dir(shared: Path) -> Path:
    path = shared / "signals"
    if not path.is_dir():
        pytest.skip(f"recorded service responses not found at {path}")
    return path
