"""fetch_feed against a real HTTP server on 127.0.0.1 (MockTransport only for edge cases)."""

from __future__ import annotations

import gzip
import socket
import threading
import time
import tracemalloc
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from monitor import __version__
from monitor.domain import Validators
from monitor.errors import FeedGoneError, FetchError
from monitor.intake.fetch import (
    NO_ROOM,
    NO_ROOM_RETRY_S,
    FetchLimits,
    fetch_feed,
    make_client,
    parse_retry_after,
    redact_url,
    user_agent,
)
from monitor.intake.hostgate import MAX_HOST_HOLD_S, RATE_LIMIT_HOLD_S, HostGate, host_wait_s
from monitor.intake.inflate import PIECE_BYTES
from tests.support.feedserver import FeedServer, rss

LIMITS = FetchLimits(
    connect_timeout_s=1.0,
    read_timeout_s=0.5,
    total_timeout_s=1.5,
    max_body_bytes=1_000_000,
    max_redirects=3,
)
FEED = rss([{"title": "One", "link": "http://example.invalid/1", "guid": "1"}])
NOTHING = Validators()


@pytest.fixture(scope="module")
def server() -> Iterator[FeedServer]:
    with FeedServer() as srv:
        yield srv


@pytest.fixture()
def client() -> Iterator[httpx.Client]:
    with make_client(LIMITS, trust_env=False) as c:
        yield c


# Size-cap tests must end on the cap, not on a deadline, even on a loaded CI machine.
ROOMY = FetchLimits(
    connect_timeout_s=10.0,
    read_timeout_s=20.0,
    total_timeout_s=60.0,
    max_body_bytes=LIMITS.max_body_bytes,
    user_agent=LIMITS.user_agent,
)


def fetch_error(client: httpx.Client, url: str, limits: FetchLimits = LIMITS) -> FetchError:
    with pytest.raises(FetchError) as info:
        fetch_feed(client, url, NOTHING, limits)
    return info.value


# -- success and validators ----------------------------------------------------------------


def test_200_then_304_with_etag(server: FeedServer, client: httpx.Client) -> None:
    server.serve("/etag.xml", FEED)
    first = fetch_feed(client, server.url("/etag.xml"), NOTHING, LIMITS)
    assert first.status == 200 and first.body == FEED and not first.not_modified
    assert first.etag and first.body_hash and first.content_type.startswith("application/rss")
    again = fetch_feed(
        client, server.url("/etag.xml"), Validators(first.etag, None, first.body_hash), LIMITS
    )
    assert again.status == 304 and again.not_modified and again.body == b""
    assert again.etag == first.etag
    assert server.requests[-1].headers["If-None-Match"] == first.etag


def test_last_modified_round_trip(server: FeedServer, client: httpx.Client) -> None:
    stamp = "Wed, 21 Oct 2026 07:28:00 GMT"
    server.serve("/lm.xml", FEED, etag=False, last_modified=stamp)
    first = fetch_feed(client, server.url("/lm.xml"), NOTHING, LIMITS)
    assert first.last_modified == stamp and first.etag is None
    again = fetch_feed(client, server.url("/lm.xml"), Validators(None, stamp, None), LIMITS)
    assert again.not_modified and again.last_modified == stamp
    assert server.requests[-1].headers["If-Modified-Since"] == stamp


def test_changed_body_is_fetched_again(server: FeedServer, client: httpx.Client) -> None:
    server.serve("/changes.xml", FEED)
    first = fetch_feed(client, server.url("/changes.xml"), NOTHING, LIMITS)
    server.serve("/changes.xml", rss([{"title": "Two"}]))
    second = fetch_feed(
        client, server.url("/changes.xml"), Validators(first.etag, None, first.body_hash), LIMITS
    )
    assert second.status == 200 and b"Two" in second.body and second.body_hash != first.body_hash


def test_hash_equal_200_counts_as_unchanged(server: FeedServer, client: httpx.Client) -> None:
    server.serve("/liar.xml", FEED, etag=False)  # a server that ignores validators
    first = fetch_feed(client, server.url("/liar.xml"), NOTHING, LIMITS)
    again = fetch_feed(
        client, server.url("/liar.xml"), Validators(body_hash=first.body_hash), LIMITS
    )
    assert again.status == 200 and again.not_modified and again.body == b""


def test_sends_honest_user_agent(server: FeedServer) -> None:
    server.serve("/ua.xml", FEED)
    limits = FetchLimits(user_agent=user_agent("mailto:ops@example.invalid"))
    with make_client(limits, trust_env=False) as c:
        fetch_feed(c, server.url("/ua.xml"), NOTHING, limits)
    sent = server.requests[-1].headers
    assert sent["User-Agent"] == f"monitor/{__version__} (+mailto:ops@example.invalid; feed poller)"
    assert "br" not in sent["Accept-Encoding"]


def test_gzip_body_is_decoded(server: FeedServer, client: httpx.Client) -> None:
    server.serve("/gz.xml", gzip.compress(FEED), headers={"Content-Encoding": "gzip"})
    result = fetch_feed(client, server.url("/gz.xml"), NOTHING, LIMITS)
    assert result.body == FEED


@pytest.mark.parametrize("trailer", [b"\x00" * 64, b"\r\n<!-- served by cache -->"])
def test_padding_or_junk_after_a_gzip_body_is_ignored(
    server: FeedServer, client: httpx.Client, trailer: bytes
) -> None:
    two_members = gzip.compress(FEED[:40]) + gzip.compress(FEED[40:])
    server.serve("/pad.xml", two_members + trailer, headers={"Content-Encoding": "gzip"})
    result = fetch_feed(client, server.url("/pad.xml"), NOTHING, LIMITS)
    assert result.body == FEED


def test_a_corrupt_gzip_body_is_a_decode_error(server: FeedServer, client: httpx.Client) -> None:
    server.serve("/bad.xml", b"\x1f\x8b\x08junk" * 10, headers={"Content-Encoding": "gzip"})
    with pytest.raises(FetchError) as info:
        fetch_feed(client, server.url("/bad.xml"), NOTHING, LIMITS)
    assert info.value.kind == "decode"


def test_raw_deflate_body_is_decoded(server: FeedServer, client: httpx.Client) -> None:
    raw = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    server.serve(
        "/deflate.xml", raw.compress(FEED) + raw.flush(), headers={"Content-Encoding": "deflate"}
    )
    assert fetch_feed(client, server.url("/deflate.xml"), NOTHING, LIMITS).body == FEED


def test_brotli_is_refused_cleanly(server: FeedServer, client: httpx.Client) -> None:
    server.serve("/br.xml", b"\x1b\x03\x00\xf8garbage", headers={"Content-Encoding": "br"})
    assert fetch_error(client, server.url("/br.xml")).kind == "unsupported_encoding"


# -- status codes --------------------------------------------------------------------------


def test_404(server: FeedServer, client: httpx.Client) -> None:
    err = fetch_error(client, server.url("/missing.xml"))
    assert err.kind == "not_found" and err.status == 404


def test_410_is_feed_gone(server: FeedServer, client: httpx.Client) -> None:
    server.fault("/gone.xml", "status", status=410)
    with pytest.raises(FeedGoneError) as info:
        fetch_feed(client, server.url("/gone.xml"), NOTHING, LIMITS)
    assert info.value.status == 410


def test_429_retry_after_seconds(server: FeedServer, client: httpx.Client) -> None:
    server.fault("/busy.xml", "status", status=429, headers={"Retry-After": "120"})
    err = fetch_error(client, server.url("/busy.xml"))
    assert err.kind == "rate_limited" and err.retry_after_s == 120


def test_503_retry_after_http_date(server: FeedServer, client: httpx.Client) -> None:
    when = datetime.now(UTC) + timedelta(minutes=10)
    server.fault(
        "/down.xml",
        "status",
        status=503,
        headers={"Retry-After": format_datetime(when, usegmt=True)},
    )
    err = fetch_error(client, server.url("/down.xml"))
    assert err.kind == "unavailable" and err.retry_after_s is not None
    assert 590 <= err.retry_after_s <= 601


def test_other_status_codes(server: FeedServer, client: httpx.Client) -> None:
    for code in (403, 451, 500):
        server.fault(f"/s{code}", "status", status=code)
        err = fetch_error(client, server.url(f"/s{code}"))
        assert (err.kind, err.status) == (f"http_{code}", code)


def test_parse_retry_after_forms() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert parse_retry_after("30", now) == 30
    assert parse_retry_after("Thu, 01 Jan 2026 00:01:00 GMT", now) == 60
    assert parse_retry_after("Wed, 31 Dec 2025 00:00:00 GMT", now) == 0
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after("\u00b2", now) is None  # a superscript two is a digit to isdigit()
    assert parse_retry_after(None, now) is None


def test_empty_200(server: FeedServer, client: httpx.Client) -> None:
    server.fault("/empty.xml", "empty")
    assert fetch_error(client, server.url("/empty.xml")).kind == "empty"


# -- redirects -----------------------------------------------------------------------------


def test_temporary_redirect_is_followed(server: FeedServer, client: httpx.Client) -> None:
    server.serve("/target.xml", FEED)
    server.fault("/temp.xml", "redirect", location="/target.xml", status=302)
    result = fetch_feed(client, server.url("/temp.xml"), NOTHING, LIMITS)
    assert result.url == server.url("/target.xml") and result.permanent_redirect is None


def test_admin_headers_follow_a_redirect_only_within_the_origin(
    server: FeedServer, client: httpx.Client
) -> None:
    """Configured headers are often credentials: kept on the same scheme, host and port,
    dropped when a redirect leads anywhere else (here: the same host on another port)."""
    with FeedServer() as elsewhere:
        elsewhere.serve("/feed.xml", FEED)
        server.serve("/target.xml", FEED)
        server.fault("/here.xml", "redirect", location="/target.xml", status=302)
        server.fault("/away.xml", "redirect", location=elsewhere.url("/feed.xml"), status=302)
        key = {"X-Api-Key": "k-secret"}
        fetch_feed(client, server.url("/here.xml"), NOTHING, LIMITS, extra_headers=key)
        fetch_feed(client, server.url("/away.xml"), NOTHING, LIMITS, extra_headers=key)
        paths = ["/here.xml", "/target.xml", "/away.xml"]
        sent = {r.path: r.headers.get("X-Api-Key") for r in server.requests if r.path in paths}
        assert sent == dict.fromkeys(paths, "k-secret")
        [request] = elsewhere.requests
        assert "X-Api-Key" not in request.headers and "x-api-key" not in request.headers


@pytest.mark.parametrize(
    ("origin", "target", "kept"),
    [
        ("http://feeds.example.org/rss", "https://feeds.example.org/rss", True),  # upgrade
        ("https://feeds.example.org/rss", "https://feeds.example.org:443/new", True),
        ("https://feeds.example.org/rss", "http://feeds.example.org/rss", False),  # downgrade
        ("http://feeds.example.org/rss", "https://feeds.example.org:8443/rss", False),
        ("http://feeds.example.org/rss", "http://cdn.example.net/rss", False),
    ],
)
def test_which_redirects_keep_the_admins_headers(origin: str, target: str, kept: bool) -> None:
    from monitor.intake.fetch import _same_origin_or_upgrade

    assert _same_origin_or_upgrade(httpx.URL(origin), httpx.URL(target)) is kept


def test_permanent_redirect_is_reported(server: FeedServer, client: httpx.Client) -> None:
    server.serve("/new.xml", FEED)
    server.fault("/moved.xml", "redirect", location=server.url("/new.xml"), status=301)
    result = fetch_feed(client, server.url("/moved.xml"), NOTHING, LIMITS)
    assert result.body == FEED and result.permanent_redirect == server.url("/new.xml")


def test_permanent_then_temporary_reports_first_hop(
    server: FeedServer, client: httpx.Client
) -> None:
    server.serve("/final.xml", FEED)
    server.fault("/hop2.xml", "redirect", location="/final.xml", status=307)
    server.fault("/hop1.xml", "redirect", location="/hop2.xml", status=308)
    result = fetch_feed(client, server.url("/hop1.xml"), NOTHING, LIMITS)
    assert result.permanent_redirect == server.url("/hop2.xml")


def test_redirect_loop(server: FeedServer, client: httpx.Client) -> None:
    server.fault("/loop.xml", "redirect_loop")
    err = fetch_error(client, server.url("/loop.xml"))
    assert err.kind == "redirect_loop"
    assert server.hits("/loop.xml") <= LIMITS.max_redirects + 1


def test_too_many_redirects(server: FeedServer, client: httpx.Client) -> None:
    for i in range(6):
        server.fault(f"/chain{i}", "redirect", location=f"/chain{i + 1}", status=302)
    err = fetch_error(client, server.url("/chain0"))
    assert err.kind == "redirect_loop" and "more than 3" in str(err)


# -- time ----------------------------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_connection_refused(client: httpx.Client) -> None:
    err = fetch_error(client, f"http://127.0.0.1:{_closed_port()}/feed.xml")
    assert err.kind == "connect"


def test_dns_failure(client: httpx.Client) -> None:
    assert fetch_error(client, "http://no-such-host.invalid/feed.xml").kind == "dns"


def test_connection_reset(server: FeedServer, client: httpx.Client) -> None:
    server.fault("/reset.xml", "reset")
    assert fetch_error(client, server.url("/reset.xml")).kind in {"network", "protocol"}


def test_hanging_server_times_out(server: FeedServer, client: httpx.Client) -> None:
    server.fault("/hang.xml", "hang")
    start = time.monotonic()
    assert fetch_error(client, server.url("/hang.xml")).kind == "timeout"
    assert time.monotonic() - start < LIMITS.read_timeout_s + 0.5


def test_drip_stops_at_total_deadline(server: FeedServer, client: httpx.Client) -> None:
    server.fault("/drip.xml", "drip", interval_s=0.1)  # each byte well inside read timeout
    start = time.monotonic()
    err = fetch_error(client, server.url("/drip.xml"))
    elapsed = time.monotonic() - start
    assert err.kind == "timeout" and "in total" in str(err)
    assert LIMITS.total_timeout_s <= elapsed < LIMITS.total_timeout_s + 0.5


def test_slow_but_complete_response_succeeds(server: FeedServer, client: httpx.Client) -> None:
    server.serve("/slow.xml", FEED, delay_s=0.2)
    assert fetch_feed(client, server.url("/slow.xml"), NOTHING, LIMITS).body == FEED


# -- size ----------------------------------------------------------------------------------


def test_endless_body_stops_at_cap(server: FeedServer, client: httpx.Client) -> None:
    server.fault("/endless.xml", "endless")
    err = fetch_error(client, server.url("/endless.xml"), ROOMY)
    assert err.kind == "too_large"


def test_gzip_bomb_stops_at_cap(server: FeedServer, client: httpx.Client) -> None:
    server.fault("/bomb.xml", "gzip_bomb", size=100_000_000)
    fetch_error(client, server.url("/bomb.xml"), ROOMY)  # warm up: the server builds it once
    tracemalloc.start()
    try:
        err = fetch_error(client, server.url("/bomb.xml"), ROOMY)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert err.kind == "too_large"
    # Never near the 100 MB it inflates to, nor a copy of the cap: the cap and a few pieces
    # (a 64 KB read of a bomb inflates to the whole cap at once unless inflated in pieces).
    assert peak < LIMITS.max_body_bytes + 4 * PIECE_BYTES


def test_declared_oversize_is_refused_before_reading(
    server: FeedServer, client: httpx.Client
) -> None:
    server.serve("/big.xml", b"x" * (LIMITS.max_body_bytes + 1))
    assert fetch_error(client, server.url("/big.xml")).kind == "too_large"


def test_body_exactly_at_cap_is_accepted(server: FeedServer, client: httpx.Client) -> None:
    server.serve("/cap.xml", b"y" * LIMITS.max_body_bytes)
    assert (
        len(fetch_feed(client, server.url("/cap.xml"), NOTHING, LIMITS).body)
        == LIMITS.max_body_bytes
    )


# -- messages ------------------------------------------------------------------------------


def test_messages_hide_credentials_and_tokens(client: httpx.Client) -> None:
    url = f"http://user:s3cret@127.0.0.1:{_closed_port()}/feed?token=abc123"
    err = fetch_error(client, url)
    assert "s3cret" not in str(err) and "abc123" not in str(err) and "user" not in str(err)


def test_redact_url() -> None:
    assert (
        redact_url("https://u:p@Example.com:8443/a/b?key=1#frag")
        == "https://example.com:8443/a/b?…"
    )
    assert redact_url("http://[::1]/x") == "http://[::1]/x"


def test_mock_transport_unknown_status_and_missing_location() -> None:
    """Boundary cases that a real server cannot easily produce."""

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/noloc":
            return httpx.Response(302)  # a redirect without Location is just a 3xx failure
        return httpx.Response(599, text="odd")

    with httpx.Client(transport=httpx.MockTransport(handler)) as c:
        assert fetch_error(c, "http://feeds.invalid/noloc").kind == "http_302"
        assert fetch_error(c, "http://feeds.invalid/odd").kind == "http_599"


# -- HostGate ------------------------------------------------------------------------------


class FakeClock:
    """A clock whose sleep advances time instantly."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self.now += seconds


def test_gate_spaces_starts_per_host() -> None:
    clock = FakeClock()
    gate = HostGate(per_host=2, min_interval_s=1.0, clock=clock, sleep=clock.sleep)
    starts = []
    for _ in range(3):
        with gate.slot("http://a.example/feed"):
            starts.append(clock())
    assert starts == [100.0, 101.0, 102.0]
    with gate.slot("http://b.example/feed"):  # another host is not delayed
        assert clock() == 102.0


def test_gate_limits_concurrency_per_host() -> None:
    gate = HostGate(per_host=2, min_interval_s=0.0)
    active = peak = 0
    lock = threading.Lock()

    def work() -> None:
        nonlocal active, peak
        with gate.slot("http://busy.example/x"):
            with lock:
                active += 1
                peak = max(peak, active)
            time.sleep(0.05)
            with lock:
                active -= 1

    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    assert peak == 2


def test_gate_holds_a_host_for_its_wait_then_forgets_it() -> None:
    clock = FakeClock()
    gate = HostGate(per_host=2, min_interval_s=0.0, clock=clock, sleep=clock.sleep)
    gate.hold("http://search.example/q?a=1", 120)
    assert gate.held_for("http://search.example/q?b=2") == 120  # any feed of that host
    assert gate.held_for("http://search.example:8080/q") == 0  # another port is another host
    gate.hold("http://search.example/q", 30)  # a shorter wait never cuts a longer one
    clock.now += 100
    assert gate.held_for("http://search.example/q") == 20
    gate.hold("http://search.example/q", 10 * MAX_HOST_HOLD_S)
    assert gate.held_for("http://search.example/q") == MAX_HOST_HOLD_S  # capped
    clock.now += MAX_HOST_HOLD_S
    assert gate.held_for("http://search.example/q") == 0
    assert gate._held_until == {}  # nothing kept once the wait is over


def test_only_a_429_holds_the_whole_host() -> None:
    with_wait = FetchError("rate_limited", "HTTP 429", status=429, retry_after_s=300)
    assert host_wait_s(with_wait) == 300
    assert host_wait_s(FetchError("rate_limited", "HTTP 429", status=429)) == RATE_LIMIT_HOLD_S
    unavailable = FetchError("unavailable", "HTTP 503", status=503, retry_after_s=300)
    assert host_wait_s(unavailable) is None
    assert host_wait_s(FetchError("not_found", "HTTP 404", status=404)) is None


def test_gate_releases_slot_on_error() -> None:
    gate = HostGate(per_host=1, min_interval_s=0.0)
    with pytest.raises(RuntimeError), gate.slot("http://x.example/"):
        raise RuntimeError("boom")
    with gate.slot("http://x.example/"):
        pass


def test_gate_with_real_server_spacing(server: FeedServer, client: httpx.Client) -> None:
    server.serve("/spaced.xml", FEED)
    gate = HostGate(per_host=2, min_interval_s=0.2)
    starts: list[float] = []
    for _ in range(3):
        with gate.slot(server.url("/spaced.xml")):
            # The gate spaces the starts; when the server reads each request depends on the
            # machine's load (a busy CI box can delay the first and not the second).
            starts.append(time.monotonic())
            fetch_feed(client, server.url("/spaced.xml"), NOTHING, LIMITS)
    assert len([r for r in server.requests if r.path == "/spaced.xml"]) == 3
    assert all(b - a >= 0.19 for a, b in zip(starts, starts[1:], strict=False))


def test_server_stops_promptly_with_slow_handlers() -> None:
    srv = FeedServer().start()
    srv.fault("/hang", "hang")
    srv.fault("/drip", "drip", interval_s=1.0)
    limits = FetchLimits(read_timeout_s=5, total_timeout_s=5)
    errors: list[BaseException] = []

    def pull(path: str) -> None:
        with make_client(limits, trust_env=False) as c:
            try:
                fetch_feed(c, srv.url(path), NOTHING, limits)
            except Exception as exc:  # noqa: BLE001 - any outcome is fine, only timing matters
                errors.append(exc)

    threads = [threading.Thread(target=pull, args=(p,), daemon=True) for p in ("/hang", "/drip")]
    for t in threads:
        t.start()
    time.sleep(0.3)
    start = time.monotonic()
    srv.stop()
    assert time.monotonic() - start < 1.0


@pytest.mark.parametrize("size", [PIECE_BYTES, 3 * PIECE_BYTES, 3 * PIECE_BYTES + 17])
def test_a_body_inflated_in_pieces_comes_out_whole(size: int) -> None:
    """One raw chunk that inflates to many pieces, some of exactly the piece size (zlib may
    still hold output when the input is used up): every byte comes out, in order."""
    from monitor.intake.inflate import Inflater

    body = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    parts: list[bytes] = []
    inflater = Inflater("gzip", 10 * size, "test")
    inflater.feed(gzip.compress(body), parts)
    assert b"".join(parts) == body
    assert max(len(part) for part in parts) <= PIECE_BYTES


def test_a_body_past_the_large_threshold_waits_for_a_slot(
    server: FeedServer, client: httpx.Client
) -> None:
    """With every large-body slot held, a small body is read at once and a large one waits
    for a slot: it is read once one comes free; if none does, it is refused as "no room",
    asked again in a minute, not as a timeout that would count against the feed or the
    network."""
    from monitor.intake.bodies import LargeBodies

    bodies = LargeBodies(slots=1, threshold=100_000)
    server.serve("/small-body.xml", FEED)
    big = rss(
        [{"title": f"Story {n}", "guid": f"b-{n}", "description": "w " * 100} for n in range(900)]
    )
    assert len(big) > bodies.threshold
    server.serve("/large-body.xml", big)
    limits = FetchLimits(
        connect_timeout_s=2.0, read_timeout_s=2.0, total_timeout_s=1.0,
        max_body_bytes=LIMITS.max_body_bytes,
    )  # fmt: skip
    with bodies.ticket() as holder:
        assert holder.need(time.monotonic() + 1)
        with bodies.ticket() as ticket:
            small = fetch_feed(
                client, server.url("/small-body.xml"), NOTHING, limits, large_body=ticket
            )
            assert small.body == FEED and not ticket.held
        with bodies.ticket() as ticket, pytest.raises(FetchError) as caught:
            fetch_feed(client, server.url("/large-body.xml"), NOTHING, limits, large_body=ticket)
        assert caught.value.kind == NO_ROOM and "large body" in str(caught.value)
        assert caught.value.retry_after_s == NO_ROOM_RETRY_S
        threading.Timer(0.2, holder.release).start()
        with bodies.ticket() as ticket:
            large = fetch_feed(
                client, server.url("/large-body.xml"), NOTHING, limits, large_body=ticket
            )
            assert large.body == big and ticket.held
    with bodies.ticket() as last:
        assert last.need(time.monotonic())  # every slot was given back
