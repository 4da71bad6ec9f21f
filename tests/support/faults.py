"""Helpers for fault-injection tests: a daemon in a subprocess that can be SIGKILLed, a
webhook receiver that tells received posts from acknowledged ones, and polling waits."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from monitor.store.db import make_engine, make_sessions
from monitor.store.models import AlertRow, ItemRow, ItemSourceRow
from tests.support.receivers import HOST, WebhookReceiver

# Measures (one country each, so each is its own event) and a keyword that finds it in titles.
MEASURES: list[tuple[str, str, str]] = [
    (
        "Myanmar",
        "Myanmar junta orders telecom operators to block Facebook",
        "The military government told mobile operators and internet providers to block "
        "access to Facebook until further notice.",
    ),
    (
        "Balochistan",
        "Pakistan suspends mobile internet in Balochistan",
        "The interior ministry ordered a shutdown of mobile data services across the province "
        "for security reasons.",
    ),
    (
        "Iran",
        "Iran throttles Instagram and WhatsApp ahead of protests",
        "Authorities slowed access to Instagram and WhatsApp and ordered providers to restrict "
        "bandwidth nationwide.",
    ),
    (
        "Russia",
        "Russia bans VPN services that give access to blocked sites",
        "Roskomnadzor said VPN providers that do not connect to the state registry will be "
        "blocked.",
    ),
    (
        "Ethiopia",
        "Ethiopia shuts down internet in Amhara region",
        "Residents report a complete internet blackout ordered by the government during "
        "military operations.",
    ),
    (
        "Turkey",
        "Turkey blocks access to X after earthquake criticism",
        "The information technology authority throttled and blocked the platform X, formerly "
        "Twitter.",
    ),
    (
        "Bangladesh",
        "Bangladesh orders nationwide mobile internet shutdown amid student protests",
        "The telecom regulator instructed operators to cut mobile internet across the country.",
    ),
    (
        "Uganda",
        "Uganda blocks social media ahead of election",
        "The communications commission ordered providers to block Facebook, WhatsApp and "
        "Twitter before the vote.",
    ),
]

_SPORTS = ["football", "basketball", "cricket", "tennis", "rugby", "hockey", "volleyball"]


def measure_item(index: int) -> dict[str, str]:
    """The `index`-th synthetic measure report as an RSS item (guid `measure-<keyword>`)."""
    key, title, summary = MEASURES[index]
    return {
        "title": title,
        "description": summary,
        "guid": f"measure-{key.lower()}",
        "link": f"https://news.example.org/measures/{key.lower()}",
        "pubDate": "Mon, 23 Nov 2026 06:00:00 +0000",
    }


def unrelated_item(index: int) -> dict[str, str]:
    """A harmless story, distinct per index."""
    sport = _SPORTS[index % len(_SPORTS)]
    return {
        "title": f"Town {index} {sport} club wins the regional cup after extra time",
        "description": f"Supporters of team number {index} celebrated in the square.",
        "guid": f"other-{index}",
        "link": f"https://news.example.org/sport/{index}",
        "pubDate": "Mon, 23 Nov 2026 05:00:00 +0000",
    }


def wait_until(
    condition: Callable[[], Any],
    timeout: float,
    what: str,
    daemon: DaemonProcess | None = None,
    interval: float = 0.1,
) -> Any:
    """Poll `condition` until truthy (returned); fail naming `what` (and the daemon's log)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if daemon is not None and not daemon.alive:
            raise AssertionError(f"daemon died while waiting for {what}:\n{daemon.log()[-4000:]}")
        if time.monotonic() > deadline:
            tail = f"\n--- daemon log ---\n{daemon.log()[-4000:]}" if daemon else ""
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}{tail}")
        time.sleep(interval)


def daemon_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The test environment for a subprocess daemon: fast ticks, no politeness to 127.0.0.1."""
    env = dict(os.environ)
    env.update(
        {
            "MONITOR_HOST_SPACING": "0",
            "MONITOR_TICK_SECONDS": "1",
            "MONITOR_PER_HOST": "32",
            "MONITOR_WORKERS": "32",
            # The web surface on a port of the system's choosing: daemons run side by side.
            "MONITOR_LISTEN": "127.0.0.1:0",
        }
    )
    env.update(extra or {})
    return env


class DaemonProcess:
    """`python -m monitor --config C --db D run` with stdout+stderr in a log file."""

    def __init__(self, config: Path, db_url: str, log_path: Path, env: Mapping[str, str]):
        self.log_path = log_path
        self._log = open(log_path, "w", encoding="utf-8")  # noqa: SIM115 - closed in stop paths
        self.process = subprocess.Popen(
            [sys.executable, "-m", "monitor", "--config", str(config), "--db", db_url, "run"],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=dict(env),
        )

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def log(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def kill9(self) -> None:
        """SIGKILL: no handler runs, no lease is given back, nothing is flushed."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)
        self._log.close()

    def terminate(self, timeout: float = 20.0) -> int:
        """SIGTERM and wait for a clean exit."""
        if self.alive:
            self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout=timeout)
        finally:
            if self.alive:
                self.process.kill()
                self.process.wait(timeout=10)
            self._log.close()
        return code

    def cleanup(self) -> None:
        if self.alive:
            self.process.kill()
            self.process.wait(timeout=10)
        if not self._log.closed:
            self._log.close()


@contextmanager
def daemons() -> Iterator[list[DaemonProcess]]:
    """Collects started daemons and kills whatever is still running at the end."""
    started: list[DaemonProcess] = []
    try:
        yield started
    finally:
        for daemon in started:
            daemon.cleanup()


@contextmanager
def db_session(db_url: str) -> Iterator[Session]:
    engine = make_engine(db_url)
    try:
        with make_sessions(engine)() as session:
            yield session
    finally:
        engine.dispose()


def stored_guids(db_url: str) -> Counter[str]:
    """How many item_sources rows each guid has."""
    with db_session(db_url) as session:
        return Counter(session.scalars(select(ItemSourceRow.guid)))


def items_by_guid(db_url: str) -> dict[str, ItemRow]:
    with db_session(db_url) as session:
        rows = session.execute(
            select(ItemSourceRow.guid, ItemRow).join(ItemRow, ItemRow.id == ItemSourceRow.item_id)
        )
        return {guid: item for guid, item in rows}


def alert_rows(db_url: str) -> list[AlertRow]:
    with db_session(db_url) as session:
        return list(session.scalars(select(AlertRow).order_by(AlertRow.id)))


class AckWebhookReceiver(WebhookReceiver):
    """A WebhookReceiver that also records which posts it acknowledged with a 2xx answer.

    `posts` (inherited) holds every post received, before any answer; `acked` holds
    (path, body) of posts whose 2xx answer was written. `hang_after=N` acknowledges the
    first N posts, then hangs on every later one until `unhang()`.
    """

    def __init__(self, path: str = "/hook") -> None:
        super().__init__(path)
        self.acked: list[tuple[str, dict[str, Any]]] = []
        self.hang_after: int | None = None
        self.hanging = 0

    def url_for(self, path: str, auth: str = "") -> str:
        """An Apprise json:// URL posting to `path` on this receiver."""
        return f"json://{auth}{HOST}:{self.port}{path}"

    def should_hang(self) -> bool:
        with self._cond:
            if self._release.is_set():
                return False
            return self.hang or (self.hang_after is not None and len(self.acked) >= self.hang_after)

    def hang_here(self) -> None:
        with self._cond:
            self.hanging += 1
        super().hang_here()
        with self._cond:
            self.hanging -= 1

    def unhang(self) -> None:
        """Answer normally from now on; posts that were hanging are dropped unanswered."""
        self.hang = False
        self.hang_after = None
        self._release.set()

    def answered(self, path: str, body: dict[str, Any], status: int) -> None:
        if status < 400:
            with self._cond:
                self.acked.append((path, body))
                self._cond.notify_all()

    def received(self) -> list[tuple[str, dict[str, Any]]]:
        with self._cond:
            return [(path, body) for (path, _), body in zip(self.requests, self.posts, strict=True)]

    def acknowledged(self) -> list[tuple[str, dict[str, Any]]]:
        with self._cond:
            return list(self.acked)


def by_measure(posts: Sequence[tuple[str, dict[str, Any]]]) -> Counter[tuple[str, str]]:
    """Count posts per (path, measure keyword), told apart by the story link each alert
    carries; a post linking no single measure counts as '?'."""
    counts: Counter[tuple[str, str]] = Counter()
    for path, body in posts:
        message = str(body.get("message", ""))
        keys = [key for key, _, _ in MEASURES if f"/measures/{key.lower()}" in message]
        counts[(path, keys[0] if len(keys) == 1 else f"?{body.get('title', '')}")] += 1
    return counts


def pid_of_local_port(port: int, pids: Sequence[int]) -> int | None:
    """Which of `pids` owns the local TCP socket on 127.0.0.1:`port` (Linux /proc): the
    socket's inode from /proc/net/tcp, then the process holding a descriptor on it."""
    inode = None
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].split(":")[1], 16) == port:
            inode = fields[9]
            break
    if inode is None:
        return None
    target = f"socket:[{inode}]"
    for pid in pids:
        fds = Path(f"/proc/{pid}/fd")
        try:
            if any(os.readlink(fd) == target for fd in fds.iterdir()):
                return pid
        except OSError:
            continue  # the process ended, or a descriptor closed while being read
    return None
