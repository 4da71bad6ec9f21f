"""Coordination between `monitor run` replicas that share one PostgreSQL database.

Replicas need no service beyond the database. Two kinds of work must not run twice at once:

- Feeds and outbox rows are claimed row by row (`FOR UPDATE SKIP LOCKED` and a conditional
  UPDATE of a lease column, monitor/store/repo.py and monitor/alerts/delivery.py): each row
  has its own holder and a lease that outlives a crash by at most its length.
- Whole-database work is guarded here by PostgreSQL advisory locks:
  * `hold_for_transaction(session, WRITES)` serializes the transactions that store polled
    items (dedup against stored URLs and hashes, event clustering) and the feeds-table sync.
    Their reads must see each other's commits, or two replicas storing the same story from
    two feeds would each insert it as new and each open an event (and alert) for it. Only
    the short write transaction waits; fetching and parsing stay parallel.
  * `singleton(engine, name)` lets one replica at a time run a scheduler job that works on
    the whole database (digests, corroborate, silence, prune); a replica that finds the lock
    taken skips that run. Run one after the other, each sees what the last one wrote (the
    digest already sent, the verdict already stored, the signal already open).
  * `MIGRATIONS` makes replicas that start together apply migrations one at a time.

Why advisory locks rather than a lease table for these: the server drops a session's locks
when its connection ends, so a replica killed with -9 frees them at once (a lease would hold
until it expires), they compare no clocks between machines, and they need no schema. They do
not survive a database restart, which ends every transaction they guard anyway.

SQLite: every function here is a no-op. A SQLite database serves one `monitor run` process
(plus CLI and web readers); replicas need PostgreSQL.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

logger = logging.getLogger(__name__)

WRITES = "writes"
MIGRATIONS = "migrations"


def lock_key(name: str) -> int:
    """The advisory lock's 64-bit key for a name (stable across processes and versions)."""
    digest = hashlib.sha256(f"monitor:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _postgres(bind: Engine | Connection) -> bool:
    return bind.dialect.name == "postgresql"


def hold_connection_for_transaction(connection: Connection, name: str) -> None:
    """Wait for the named lock; it is held until the connection's transaction ends."""
    if _postgres(connection):
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": lock_key(name)})


def hold_for_transaction(session: Session, name: str) -> None:
    """Wait for the named lock, held until the session's transaction commits or rolls back.

    Take it before the transaction's first read: on PostgreSQL (READ COMMITTED) each later
    statement then sees what the previous holder committed.
    """
    hold_connection_for_transaction(session.connection(), name)


@contextmanager
def singleton(engine: Engine, name: str) -> Iterator[bool]:
    """True inside the block if this process holds the named lock, False if another does.

    A session-level lock on a connection of its own, since the job it guards commits several
    transactions (and makes HTTP calls between them). It is given back at the end; if the
    connection broke meanwhile, the connection is dropped, which releases it on the server.
    """
    if not _postgres(engine):
        yield True
        return
    key = lock_key(name)
    with engine.connect() as connection:
        got = bool(connection.scalar(text("SELECT pg_try_advisory_lock(:key)"), {"key": key}))
        connection.commit()
        try:
            yield got
        finally:
            if got:
                _unlock(connection, key, name)


def _unlock(connection: Connection, key: int, name: str) -> None:
    try:
        connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
        connection.commit()
    except SQLAlchemyError as exc:
        # Back in the pool still holding the lock, it would keep every other replica off
        # this job: closed instead (the server then drops the lock).
        logger.warning("could not release the %s lock, dropping its connection: %s", name, exc)
        connection.invalidate()
