"""Access tokens for the web surface and the signing key of its browser sessions.

A token is shown once, when created; the database keeps only its SHA-256, so a copy of the
database does not open the dashboard. Scopes keep a leaked feed-reader URL from reading the
API or writing verdicts.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from monitor.store.models import ApiTokenRow, AppSecretRow
from monitor.store.repo import insert_ignoring_conflict, table_of

# read: pages and GET API; write: analyst verdicts, retries; feeds: Atom and JSON Feed only
# (a token in a feed reader's URL); metrics: /metrics (a Prometheus scrape).
SCOPES = ("read", "write", "feeds", "metrics")
ADMIN_SCOPES = SCOPES
TOKEN_PREFIX = "mon_"
SESSION_KEY_NAME = "session-signing-key"
LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """What a request authenticated as."""

    id: int
    name: str
    scopes: frozenset[str]


@dataclass(frozen=True, slots=True)
class TokenListing:
    id: int
    name: str
    scopes: tuple[str, ...]
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    one_time: bool
    used_at: datetime | None


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def parse_scopes(values: Iterable[str]) -> tuple[str, ...]:
    """Scopes from the command line ("read,write" or repeated); ValueError names a wrong one."""
    scopes = [part.strip() for value in values for part in value.split(",") if part.strip()]
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown:
        raise ValueError(f"unknown scope {', '.join(unknown)}; use {', '.join(SCOPES)}")
    if not scopes:
        raise ValueError(f"give at least one scope: {', '.join(SCOPES)}")
    return tuple(s for s in SCOPES if s in scopes)


def create_token(
    session: Session,
    name: str,
    scopes: Iterable[str],
    now: datetime,
    *,
    one_time: bool = False,
) -> str:
    """Store a new token and return it: the only time its text exists."""
    if not name.strip():
        raise ValueError("a token needs a name (who or what uses it)")
    token = TOKEN_PREFIX + secrets.token_urlsafe(24)
    session.add(
        ApiTokenRow(
            name=name.strip(),
            token_hash=hash_token(token),
            scopes=",".join(parse_scopes(scopes)),
            one_time=one_time,
            created_at=now,
        )
    )
    session.flush()
    return token


def has_active_tokens(session: Session) -> bool:
    row = session.scalar(select(ApiTokenRow.id).where(ApiTokenRow.revoked_at.is_(None)).limit(1))
    return row is not None


def verify_token(
    session: Session, token: str, now: datetime, *, login: bool = False
) -> TokenInfo | None:
    """The token's identity, or None when unknown, revoked or an already used one-time link.

    With login=True a one-time token is spent: it opens one browser session and no more.
    """
    row = session.scalar(select(ApiTokenRow).where(ApiTokenRow.token_hash == hash_token(token)))
    if row is None or row.revoked_at is not None:
        return None
    if row.one_time and (row.used_at is not None or not login):
        return None
    # A write per request would make every page a write transaction: once a minute will do.
    if row.last_used_at is None or now - row.last_used_at > LAST_USED_RESOLUTION:
        row.last_used_at = now
    if row.one_time:
        row.used_at = now
    return _info(row)


def token_by_id(session: Session, token_id: int) -> TokenInfo | None:
    """A browser session's token, while it is not revoked."""
    row = session.get(ApiTokenRow, token_id)
    if row is None or row.revoked_at is not None:
        return None
    return _info(row)


def _info(row: ApiTokenRow) -> TokenInfo:
    return TokenInfo(id=row.id, name=row.name, scopes=frozenset(row.scopes.split(",")))


def list_tokens(session: Session) -> list[TokenListing]:
    rows = session.scalars(select(ApiTokenRow).order_by(ApiTokenRow.id)).all()
    return [
        TokenListing(
            id=row.id,
            name=row.name,
            scopes=tuple(row.scopes.split(",")),
            created_at=row.created_at,
            last_used_at=row.last_used_at,
            revoked_at=row.revoked_at,
            one_time=row.one_time,
            used_at=row.used_at,
        )
        for row in rows
    ]


def revoke_token(session: Session, name_or_id: str, now: datetime) -> int:
    """Revoke the tokens of that name (or that id); how many were revoked."""
    match = (
        ApiTokenRow.id == int(name_or_id)
        if name_or_id.isdigit()
        else ApiTokenRow.name == name_or_id
    )
    result = session.execute(
        update(ApiTokenRow)
        .where(match, ApiTokenRow.revoked_at.is_(None))
        .values(revoked_at=now)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def session_signing_key(session: Session, now: datetime) -> str:
    """The key that signs browser session cookies, made on first use and shared through the
    database, so a `monitor serve` replica accepts the sessions `monitor run` opened."""
    # Two processes starting together both insert; the first one's key wins for both.
    statement = insert_ignoring_conflict(session, table_of(AppSecretRow), ["name"])
    values = {"name": SESSION_KEY_NAME, "value": secrets.token_urlsafe(32), "created_at": now}
    session.connection().execute(statement, values)
    key = session.scalar(select(AppSecretRow.value).where(AppSecretRow.name == SESSION_KEY_NAME))
    assert key is not None
    return key


FIRST_RUN_NAME = "first-run login"


def first_run_login_token(session: Session, now: datetime) -> str | None:
    """A one-time admin login link while nobody has logged in yet, else None.

    Until the first link is used, each start makes a fresh one (and revokes the unused one
    before it), so the two-command start always ends with a way in. Once any token exists
    that is not an unused first-run link, access is the operators' business
    (`monitor tokens create`).
    """
    rows = session.scalars(select(ApiTokenRow).where(ApiTokenRow.revoked_at.is_(None))).all()
    if any(not row.one_time or row.used_at is not None for row in rows):
        return None
    for row in rows:
        row.revoked_at = now
    return create_token(session, FIRST_RUN_NAME, ADMIN_SCOPES, now, one_time=True)
