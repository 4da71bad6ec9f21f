"""The web app, built from a WebContext: routers, templates, the session key, the guards."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Annotated

from fastapi import Depends, FastAPI, Request
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response

from monitor.store import tokens
from monitor.store.tokens import TokenInfo
from monitor.web import event_api, event_pages, feeds_out, login, metrics, ops_api, ops_pages
from monitor.web.auth import LoginRequired, api_user, csrf_exempt, login_url, same_origin
from monitor.web.context import WebContext
from monitor.web.templating import add_template_helpers

HERE = Path(__file__).resolve().parent
API_PREFIX = "/api/v1"


# Every router of the app with its prefix, in matching order (tests walk them to check that
# each route asks for a token).
ROUTERS = (
    ("", login.router),
    ("", event_pages.router),
    # Before the sources pages: /feeds/events.atom must not be read as /feeds/{feed_id}.
    ("", feeds_out.router),
    ("", ops_pages.router),
    ("", metrics.router),
    (API_PREFIX, event_api.router),
    (API_PREFIX, ops_api.router),
)


def create_app(context: WebContext) -> FastAPI:
    """One app per process (or per test); its state hangs off `app.state`, not the module."""
    app = FastAPI(
        title="monitor",
        version=context.version,
        summary="New government internet-control measures found in the news.",
        # Swagger UI and ReDoc load from a CDN: off. The OpenAPI document stays.
        docs_url=None,
        redoc_url=None,
        # Served below, behind a token like everything else that is not health.
        openapi_url=None,
    )
    app.state.web = context
    with context.sessions.begin() as session:
        app.state.session_key = tokens.session_signing_key(session, context.clock.now())
    templates = Jinja2Templates(directory=HERE / "templates")
    add_template_helpers(templates.env, lambda target: context.targets().label(target))
    app.state.templates = templates
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    app.add_exception_handler(LoginRequired, _to_login)  # type: ignore[arg-type]
    app.middleware("http")(_refuse_cross_site_posts)

    for prefix, router in ROUTERS:
        app.include_router(router, prefix=prefix)
    metrics.install(app, context)
    _add_health_routes(app, context)
    _add_openapi_route(app)
    return app


def _add_openapi_route(app: FastAPI) -> None:
    def openapi_document(_user: Annotated[TokenInfo, Depends(api_user("read"))]) -> JSONResponse:
        return JSONResponse(app.openapi())

    app.add_api_route(f"{API_PREFIX}/openapi.json", openapi_document, include_in_schema=False)


async def _to_login(request: Request, exc: LoginRequired) -> Response:
    return RedirectResponse(login_url(exc.next_path), status_code=303)


async def _refuse_cross_site_posts(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    context: WebContext = request.app.state.web
    if not csrf_exempt(request) and not same_origin(request, context.base_url):
        return PlainTextResponse("cross-site request refused", status_code=403)
    return await call_next(request)


def _add_health_routes(app: FastAPI, context: WebContext) -> None:
    """Liveness and readiness, open to all, with a one-word body and no details."""

    def liveness() -> Response:
        state = context.daemon_state()
        if state is not None and not state.scheduler_running:
            return PlainTextResponse("scheduler", status_code=503)
        return PlainTextResponse("ok")

    def readiness() -> Response:
        try:
            with context.sessions() as session:
                session.connection().exec_driver_sql("SELECT 1")
        except Exception:  # noqa: BLE001 - any failure means not ready
            return PlainTextResponse("database", status_code=503)
        state = context.daemon_state()
        if state is not None:
            if not state.scheduler_running:
                return PlainTextResponse("scheduler", status_code=503)
            allowed = timedelta(seconds=max(3 * state.tick_seconds, 60.0))
            last = state.last_tick_at
            if last is None or context.clock.now() - last > allowed:
                return PlainTextResponse("stalled", status_code=503)
        return PlainTextResponse("ok")

    for path in ("/healthz", "/liveness"):
        app.add_api_route(path, liveness, methods=["GET", "HEAD"], include_in_schema=False)
    for path in ("/readyz", "/readiness"):
        app.add_api_route(path, readiness, methods=["GET", "HEAD"], include_in_schema=False)
