"""Nothing but health answers without a token; scopes hold; cross-site posts are refused."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient

from monitor.clock import FrozenClock
from monitor.store import tokens
from monitor.web.app import ROUTERS
from monitor.web.build import WebSurface


def test_health_answers_without_a_token(client: TestClient) -> None:
    for path in ("/healthz", "/liveness", "/readyz", "/readiness"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert response.text == "ok"


def test_pages_send_a_browser_without_a_session_to_login(client: TestClient) -> None:
    response = client.get("/?country=VN")
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2F%3Fcountry%3DVN"
    assert client.get("/login").status_code == 200


def test_a_wrong_token_does_not_log_in(client: TestClient) -> None:
    response = client.post(
        "/login", data={"token": "mon_not-a-token"}, headers={"Origin": "http://127.0.0.1:8080"}
    )
    assert response.status_code == 401
    assert "monitor_session" not in response.cookies


def test_a_one_time_link_opens_one_session_only(
    web: WebSurface, client: TestClient, clock: FrozenClock
) -> None:
    with web.context.sessions.begin() as session:
        link = tokens.first_run_login_token(session, clock.now())
    assert link is not None
    first = client.get(f"/login?token={link}&next=/events")
    assert first.status_code == 303 and first.headers["location"] == "/events"
    cookie = first.cookies["monitor_session"]
    again = TestClient(web.app, base_url="http://127.0.0.1:8080", follow_redirects=False)
    assert again.get(f"/login?token={link}").status_code == 401
    # The session it opened lives on, and no new link is printed at the next start.
    with web.context.sessions.begin() as session:
        assert tokens.first_run_login_token(session, clock.now()) is None
    again.cookies.set("monitor_session", cookie)
    assert again.get("/login").status_code == 303  # already logged in


def test_an_unused_first_run_link_is_replaced_at_the_next_start(
    web: WebSurface, clock: FrozenClock
) -> None:
    with web.context.sessions.begin() as session:
        first = tokens.first_run_login_token(session, clock.now())
    with web.context.sessions.begin() as session:
        second = tokens.first_run_login_token(session, clock.now())
        assert first is not None and second is not None and first != second
        assert tokens.verify_token(session, first, clock.now(), login=True) is None


def test_login_never_redirects_off_site(client: TestClient, make_token: Callable[..., str]) -> None:
    token = make_token("read")
    response = client.get(f"/login?token={token}&next=//evil.example/x")
    assert response.headers["location"] == "/"


def test_a_revoked_token_ends_its_browser_session(
    web: WebSurface, browser_client: TestClient, clock: FrozenClock
) -> None:
    assert browser_client.get("/login").status_code == 303
    with web.context.sessions.begin() as session:
        assert tokens.revoke_token(session, "analyst", clock.now()) == 1
    assert browser_client.get("/login").status_code == 200  # the form again


def test_a_cross_site_post_is_refused(browser_client: TestClient) -> None:
    refused = browser_client.post("/logout", headers={"Sec-Fetch-Site": "cross-site"})
    assert refused.status_code == 403
    no_origin = TestClient(browser_client.app, base_url="http://127.0.0.1:8080")
    no_origin.cookies = browser_client.cookies
    assert no_origin.post("/logout", follow_redirects=False).status_code == 403
    foreign = browser_client.post("/logout", headers={
        "Sec-Fetch-Site": "same-origin", "Origin": "http://127.0.0.1:8080"})  # fmt: skip
    assert foreign.status_code == 303


def test_a_bearer_call_needs_no_origin(web: WebSurface, make_token: Callable[..., str]) -> None:
    token = make_token("read")
    bare = TestClient(web.app, base_url="http://127.0.0.1:8080", follow_redirects=False)
    response = bare.post("/logout", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 303


def test_scopes_are_parsed_and_checked() -> None:
    assert tokens.parse_scopes(["write,read"]) == ("read", "write")
    for wrong in (["admin"], [""]):
        try:
            tokens.parse_scopes(wrong)
        except ValueError as exc:
            assert "scope" in str(exc)
        else:
            raise AssertionError(wrong)


def test_every_route_refuses_without_a_token(web: WebSurface, client: TestClient) -> None:
    """Each GET route of the app, with its path parameters filled, answers 303 (pages) or
    401 (API, feeds, metrics) to a request without credentials: only health is open."""
    open_paths = {"/healthz", "/liveness", "/readyz", "/readiness", "/login"}
    checked = 0
    routes = [(prefix, route) for prefix, router in ROUTERS for route in router.routes]
    routes += [("", route) for route in web.app.routes]
    for prefix, route in routes:
        path = prefix + getattr(route, "path", "")
        methods = getattr(route, "methods", None) or set()
        if "GET" not in methods or path in open_paths or path.startswith("/static"):
            continue
        concrete = path.replace("{event_id}", "1").replace("{feed_id}", "1")
        concrete = concrete.replace("{item_id}", "1").replace("{code}", "VN")
        concrete = concrete.replace("{alert_id}", "1")
        response = client.get(concrete)
        assert response.status_code in (303, 401), (path, response.status_code)
        checked += 1
    assert checked >= 2


def _post_routes(web: WebSurface) -> list[str]:
    routes = [(prefix, route) for prefix, router in ROUTERS for route in router.routes]
    paths = []
    for prefix, route in routes:
        if "POST" in (getattr(route, "methods", None) or set()):
            path = prefix + route.path
            for name in ("event_id", "feed_id", "item_id", "alert_id", "token_id"):
                path = path.replace("{" + name + "}", "1")
            paths.append(path)
    return [p for p in paths if p not in ("/login", "/logout")]


def test_every_post_needs_a_token_then_the_write_scope(
    web: WebSurface, client: TestClient, make_token: Callable[..., str]
) -> None:
    paths = _post_routes(web)
    assert len(paths) >= 10
    reader = {"Authorization": f"Bearer {make_token('read', 'feeds', 'metrics', name='ro')}"}
    for path in paths:
        assert client.post(path).status_code in (303, 401), path
        assert client.post(path, headers=reader).status_code == 403, path


def test_a_session_post_from_another_site_is_refused_on_every_route(
    web: WebSurface, browser_client: TestClient
) -> None:
    for path in _post_routes(web):
        response = browser_client.post(path, headers={"Sec-Fetch-Site": "cross-site"})
        assert response.status_code == 403, path
        assert response.text == "cross-site request refused", path
