"""Browser login: a token (typed in, or the first run's one-time link) opens a signed session."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from starlette.responses import RedirectResponse, Response

from monitor.store import tokens
from monitor.web.auth import (
    SESSION_COOKIE,
    DbSession,
    authenticate,
    login_redirect_target,
    set_session_cookie,
    web_context,
)
from monitor.web.templating import render

router = APIRouter(include_in_schema=False)


@router.get("/login")
def login_page(
    request: Request, session: DbSession, token: str | None = None, next: str | None = None
) -> Response:
    if token:
        return _log_in(request, session, token, next)
    if authenticate(request, session) is not None:
        return RedirectResponse(login_redirect_target(next), status_code=303)
    return render(request, "login.html", {"next": next or "/", "error": None})


@router.post("/login")
def login_form(
    request: Request,
    session: DbSession,
    token: Annotated[str, Form()],
    next: Annotated[str, Form()] = "/",
) -> Response:
    return _log_in(request, session, token.strip(), next)


def _log_in(request: Request, session: DbSession, token: str, next_path: str | None) -> Response:
    found = tokens.verify_token(session, token, web_context(request).clock.now(), login=True)
    session.commit()
    if found is None or not ({"read", "write"} & found.scopes):
        context = {"next": next_path or "/", "error": "That token is unknown, revoked or spent."}
        return render(request, "login.html", context, status_code=401)
    response = RedirectResponse(login_redirect_target(next_path), status_code=303)
    set_session_cookie(request, response, found.id)
    return response


@router.post("/logout")
def logout() -> Response:
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
