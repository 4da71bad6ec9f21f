"""`monitor run` serves the web surface in its own process, beside the scheduler: the first
run prints a one-time login link, health answers, and a stop still ends within its deadline.
`monitor serve` serves the same database alone."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.support.faults import DaemonProcess, daemon_env, daemons, wait_until
from tests.support.feedserver import FeedServer, rss
from tests.support.receivers import free_port
from tests.support.stack import write_config

LINK = re.compile(r"dashboard (http://127\.0\.0\.1:(\d+))/login\?token=(\S+)")


def _start(tmp_path: Path, feed_server: FeedServer, started: list[DaemonProcess]) -> DaemonProcess:
    feed_server.serve("/a.xml", rss([]))
    config = write_config(
        tmp_path / "feeds.yaml", [{"name": "A", "url": feed_server.url("/a.xml")}]
    )
    daemon = DaemonProcess(config, f"sqlite:///{tmp_path / 'm.db'}", tmp_path / "log", daemon_env())
    started.append(daemon)
    return daemon


def test_run_serves_the_dashboard_and_stops_in_time(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    with daemons() as started:
        daemon = _start(tmp_path, feed_server, started)
        found = wait_until(lambda: LINK.search(daemon.log()), 60, "the login link", daemon)
        base, token = found.group(1), found.group(3)
        assert httpx.get(f"{base}/healthz").text == "ok"
        wait_until(lambda: httpx.get(f"{base}/readyz").status_code == 200, 30, "ready", daemon)
        assert httpx.get(f"{base}/").status_code == 303  # to /login: nothing open
        with httpx.Client(base_url=base) as browser:
            assert browser.get(f"/login?token={token}").status_code == 303
            assert browser.get("/").status_code == 200
        # The link works once: a second browser cannot use it.
        assert httpx.get(f"{base}/login?token={token}").status_code == 401
        # The token never goes through logging (only the console line that prints the link).
        assert daemon.log().count(token) == 1
        began = time.monotonic()
        assert daemon.terminate(timeout=15) == 0
        assert time.monotonic() - began < 10
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{base}/healthz")


def _one_feed(tmp_path: Path) -> Path:
    return write_config(tmp_path / "feeds.yaml", [{"name": "A", "url": "http://127.0.0.1:9/a"}])


def test_a_taken_port_fails_the_start_with_a_clear_message(tmp_path: Path) -> None:
    config = _one_feed(tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        run = subprocess.run(
            [sys.executable, "-m", "monitor", "--config", str(config),
             "--db", f"sqlite:///{tmp_path / 'm.db'}", "run", "--listen", f"127.0.0.1:{port}"],
            capture_output=True, text=True, timeout=60, env=daemon_env(),
        )  # fmt: skip
    assert run.returncode != 0
    assert f"cannot listen on 127.0.0.1:{port}" in run.stderr
    assert "--no-web" in run.stderr and "Traceback" not in run.stderr


def test_no_web_serves_nothing(tmp_path: Path, feed_server: FeedServer) -> None:
    feed_server.serve("/a.xml", rss([]))
    config = write_config(
        tmp_path / "feeds.yaml", [{"name": "A", "url": feed_server.url("/a.xml")}]
    )
    port = free_port()
    env = daemon_env({"MONITOR_WEB": "0", "MONITOR_LISTEN": f"127.0.0.1:{port}"})
    with daemons() as started:
        daemon = DaemonProcess(config, f"sqlite:///{tmp_path / 'm.db'}", tmp_path / "log", env)
        started.append(daemon)
        wait_until(lambda: "cycle polled=1" in daemon.log(), 60, "a first poll", daemon)
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://127.0.0.1:{port}/healthz")
        assert "dashboard" not in daemon.log()
        assert daemon.terminate() == 0


def test_serve_alone_answers_on_the_same_database(tmp_path: Path) -> None:
    config = _one_feed(tmp_path)
    db = f"sqlite:///{tmp_path / 'm.db'}"
    token = subprocess.run(
        [sys.executable, "-m", "monitor", "--config", str(config), "--db", db,
         "tokens", "create", "--name", "replica-check", "--scope", "read"],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout.strip()  # fmt: skip
    port = free_port()
    serve = subprocess.Popen(
        [sys.executable, "-m", "monitor", "--config", str(config), "--db", db,
         "serve", "--listen", f"127.0.0.1:{port}"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=daemon_env(),
    )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"

        def ready() -> bool:
            try:
                return httpx.get(f"{base}/readyz").status_code == 200
            except httpx.ConnectError:
                return False

        wait_until(ready, 60, "monitor serve to answer")
        headers = {"Authorization": f"Bearer {token}"}
        assert httpx.get(f"{base}/api/v1/openapi.json", headers=headers).status_code == 200
        assert httpx.get(f"{base}/api/v1/openapi.json").status_code == 401
    finally:
        serve.terminate()
        out, _ = serve.communicate(timeout=15)
    assert serve.returncode == 0, out


def test_commands_other_than_the_web_do_not_load_the_web_stack() -> None:
    """`monitor run --no-web`, `feeds validate` and the rest skip about 14 MB of modules."""
    probe = (
        "import sys, monitor.cli.main; web = ('fastapi', 'uvicorn', 'jinja2', 'starlette'); "
        "print(sorted(m for m in web if m in sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert loaded.stdout.strip() == "[]"
