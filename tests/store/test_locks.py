"""The replicas' advisory locks on real PostgreSQL, and their no-op on SQLite."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from monitor.store import locks
from monitor.store.db import make_engine, make_sessions
from tests.support.pg import PostgresServer


@pytest.fixture
def engines(db_url: str) -> Iterator[list[Engine]]:
    made = [make_engine(db_url), make_engine(db_url)]
    yield made
    for engine in made:
        engine.dispose()


def test_a_singleton_job_runs_in_one_process_at_a_time(engines: list[Engine], db_url: str) -> None:
    first, second = engines
    with locks.singleton(first, "digests") as mine:
        assert mine
        with locks.singleton(second, "digests") as theirs:
            # SQLite serves one daemon: there the lock is always granted.
            assert theirs is db_url.startswith("sqlite")
        with locks.singleton(second, "silence") as other_job:
            assert other_job  # each job has its own lock
    with locks.singleton(second, "digests") as after:
        assert after  # given back at the end of the block


HOLDER = """
import sys, time
from monitor.store import locks
from monitor.store.db import make_engine
with locks.singleton(make_engine(sys.argv[1]), "corroborate") as mine:
    print("held" if mine else "refused", flush=True)
    time.sleep(60)
"""


@pytest.mark.postgres
def test_a_killed_holders_singleton_lock_is_freed_at_once(postgres_server: PostgresServer) -> None:
    url = postgres_server.create_database()
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, url], stdout=subprocess.PIPE, text=True
    )
    engine = make_engine(url)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with locks.singleton(engine, "corroborate") as mine:
            assert not mine
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=10)
        # No lease to run out: the server drops the lock with the dead process's connection.
        deadline = time.monotonic() + 5
        while True:
            with locks.singleton(engine, "corroborate") as mine:
                if mine or time.monotonic() > deadline:
                    break
            time.sleep(0.05)
        assert mine
    finally:
        holder.kill()
        holder.wait(timeout=10)
        engine.dispose()


@pytest.fixture
def pg_engines(postgres_server: PostgresServer) -> Iterator[list[Engine]]:
    url = postgres_server.create_database()
    made = [make_engine(url), make_engine(url)]
    yield made
    for engine in made:
        engine.dispose()


@pytest.mark.postgres
def test_store_transactions_wait_for_each_other(pg_engines: list[Engine]) -> None:
    first, second = (make_sessions(engine) for engine in pg_engines)
    order: list[str] = []
    with first.begin() as session:
        locks.hold_for_transaction(session, locks.WRITES)

        def other() -> None:
            with second.begin() as session:
                locks.hold_for_transaction(session, locks.WRITES)
                order.append("second")

        thread = threading.Thread(target=other)
        thread.start()
        time.sleep(0.5)
        order.append("first commits")
    thread.join(timeout=10)
    assert order == ["first commits", "second"]
