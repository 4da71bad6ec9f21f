"""A web app over a real, migrated SQLite file, a frozen clock and tokens of each scope."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from monitor.clock import FrozenClock
from monitor.daemon.bootstrap import Settings
from monitor.store import tokens
from monitor.store.db import upgrade
from monitor.web.build import WebSurface, build_web

BASE = "http://127.0.0.1:8080"


@pytest.fixture
def web_db(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'web.db'}"
    upgrade(url)
    return url


@pytest.fixture
def web(web_db: str, tmp_path: Path, clock: FrozenClock) -> Iterator[WebSurface]:
    surface = build_web(Settings(config_path=tmp_path / "feeds.yaml", db_url=web_db), clock=clock)
    yield surface
    surface.close()


@pytest.fixture
def make_token(web: WebSurface, clock: FrozenClock) -> Callable[..., str]:
    def make(*scopes: str, name: str = "tester") -> str:
        with web.context.sessions.begin() as session:
            return tokens.create_token(session, name, scopes or ("read",), clock.now())

    return make


@pytest.fixture
def client(web: WebSurface) -> Iterator[TestClient]:
    """A client without credentials: every test says which token it uses."""
    with TestClient(web.app, base_url=BASE, follow_redirects=False) as test_client:
        yield test_client


@pytest.fixture
def browser_client(web: WebSurface, make_token: Callable[..., str]) -> Iterator[TestClient]:
    """A client logged in like a browser (read and write), sending same-origin headers."""
    token = make_token("read", "write", name="analyst")
    with TestClient(
        web.app, base_url=BASE, follow_redirects=False, headers={"Sec-Fetch-Site": "same-origin"}
    ) as test_client:
        response = test_client.get(f"/login?token={token}")
        assert response.status_code == 303, response.text
        yield test_client
