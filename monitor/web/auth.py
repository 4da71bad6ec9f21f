"""Who a request is: a Bearer token, a signed browser-session cookie, or (feeds only) a token
in the URL, and what its scopes allow. Plus the same-origin check on unsafe requests.

Nothing but /healthz and /readyz answers without a token: the people who run this are the
kind a state may want to watch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated
from urllib.parse import quote, urlsplit

from fastapi import Depends, HTTPException, Request
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import text
from sqlalchemy.orm import Session
from starlette.responses import Response

from monitor.store import tokens
from monitor.store.tokens import TokenInfo
from monitor.web.context import WebContext

SESSION_COOKIE = "monitor_session"
SESSION_MAX_AGE_S = 30 * 24 * 3600
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# A dashboard query that runs longer than this is a bug or an attack, not a page.
STATEMENT_TIMEOUT = "5s"


class LoginRequired(Exception):
    """A page was asked for without a session: the app answers with a redirect to /login."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


def web_context(request: Request) -> WebContext:
    context: WebContext = request.app.state.web
    return context


def db_session(request: Request) -> Iterator[Session]:
    """One session per request; on PostgreSQL its statements are cut off after 5 s."""
    context = web_context(request)
    with context.sessions() as session:
        if session.get_bind().dialect.name == "postgresql":
            session.execute(text(f"SET statement_timeout = '{STATEMENT_TIMEOUT}'"))
        yield session


DbSession = Annotated[Session, Depends(db_session)]


def serializer(request: Request) -> URLSafeTimedSerializer:
    key: str = request.app.state.session_key
    return URLSafeTimedSerializer(key, salt="monitor-session")


def session_cookie_value(request: Request, token_id: int) -> str:
    return serializer(request).dumps(token_id)


def set_session_cookie(request: Request, response: Response, token_id: int) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        session_cookie_value(request, token_id),
        max_age=SESSION_MAX_AGE_S,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def _from_cookie(request: Request, session: Session) -> TokenInfo | None:
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        return None
    try:
        token_id = serializer(request).loads(cookie, max_age=SESSION_MAX_AGE_S)
    except BadSignature:
        return None
    return tokens.token_by_id(session, int(token_id)) if isinstance(token_id, int) else None


def authenticate(
    request: Request, session: Session, *, query_token: bool = False
) -> TokenInfo | None:
    """The token behind a request, if any: header first, then cookie, then `?token=`."""
    now = web_context(request).clock.now()
    bearer = _bearer(request)
    if bearer is not None:
        return tokens.verify_token(session, bearer, now)
    from_cookie = _from_cookie(request, session)
    if from_cookie is not None:
        return from_cookie
    in_url = request.query_params.get("token") if query_token else None
    if in_url:
        found = tokens.verify_token(session, in_url, now)
        # A token in a URL ends up in proxy logs and reader configs: feeds scope only.
        return found if found is not None and "feeds" in found.scopes else None
    return None


def _wanted(scope: str, principal: TokenInfo | None, *, page: bool, path: str) -> TokenInfo:
    if principal is None:
        if page:
            raise LoginRequired(path)
        raise HTTPException(401, "a token is needed", headers={"WWW-Authenticate": "Bearer"})
    if scope not in principal.scopes:
        raise HTTPException(403, f"token {principal.name!r} lacks the {scope!r} scope")
    return principal


def page_user(scope: str = "read") -> Callable[[Request, Session], TokenInfo]:
    """A page's dependency: a logged-in browser (or a token) with `scope`, else to /login."""

    def dependency(request: Request, session: DbSession) -> TokenInfo:
        principal = authenticate(request, session)
        session.commit()  # last_used_at
        return _wanted(scope, principal, page=True, path=_path_with_query(request))

    return dependency


def api_user(scope: str = "read") -> Callable[[Request, Session], TokenInfo]:
    """An API route's dependency: 401 without a token, 403 without `scope`."""

    def dependency(request: Request, session: DbSession) -> TokenInfo:
        principal = authenticate(request, session)
        session.commit()
        return _wanted(scope, principal, page=False, path=request.url.path)

    return dependency


def feed_user() -> Callable[[Request, Session], TokenInfo]:
    """Feeds out: a `feeds` token in the URL (readers send no headers), or read access."""

    def dependency(request: Request, session: DbSession) -> TokenInfo:
        principal = authenticate(request, session, query_token=True)
        session.commit()
        if principal is not None and "feeds" in principal.scopes:
            return principal
        return _wanted("read", principal, page=False, path=request.url.path)

    return dependency


def _path_with_query(request: Request) -> str:
    query = f"?{request.url.query}" if request.url.query else ""
    return f"{request.url.path}{query}"


def login_redirect_target(next_path: str | None) -> str:
    """Only a path on this site: `next=//evil.example` must not send a fresh session away."""
    if not next_path or not next_path.startswith("/") or next_path.startswith("//"):
        return "/"
    return next_path


def login_url(next_path: str) -> str:
    return f"/login?next={quote(next_path, safe='')}"


def same_origin(request: Request, base_url: str | None) -> bool:
    """Whether an unsafe request with a cookie came from our own pages.

    Browsers send Sec-Fetch-Site on every request (Chromium since 76); older ones send Origin
    on POSTs. Requests with neither are refused: a form on another site must not be able to
    act with an analyst's session.
    """
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None:
        return fetch_site == "same-origin"
    origin = request.headers.get("origin")
    if not origin or origin == "null":
        return False
    allowed = {f"{request.url.scheme}://{request.url.netloc}"}
    if base_url:
        parts = urlsplit(base_url)
        allowed.add(f"{parts.scheme}://{parts.netloc}")
    return origin in allowed


def csrf_exempt(request: Request) -> bool:
    """Only a request carrying a session cookie can be forged by another site. A Bearer call
    cannot (browsers do not add that header), and one with no credentials at all is refused
    by the route itself (401, or to /login)."""
    if request.method not in UNSAFE_METHODS or _bearer(request) is not None:
        return True
    return SESSION_COOKIE not in request.cookies
