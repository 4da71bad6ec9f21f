"""A real threaded HTTP server on 127.0.0.1 that serves feeds and misbehaves on request.

Shared by all test suites (unit and end-to-end). Every handler thread is a daemon and
every slow fault waits on a stop event, so `stop()` returns promptly even while a client
is being dripped to or left hanging.
"""

from __future__ import annotations

import hashlib
import socket
import struct
import threading
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from xml.sax.saxutils import escape, quoteattr

__all__ = ["FeedServer", "RecordedRequest", "atom", "rss"]

_CHUNK = 64 * 1024


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server received it."""

    path: str  # path including the query string
    method: str
    headers: dict[str, str]
    time: float  # time.monotonic() at arrival
    client_port: int = 0  # the client's port: tells which process asked (tests/support/faults)


@dataclass
class _Route:
    """What one path answers: a normal document or a fault."""

    body: bytes = b""
    content_type: str = "application/rss+xml; charset=utf-8"
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    etag: bool = True
    last_modified: str | None = None
    delay_s: float = 0.0
    fault: str | None = None
    options: dict[str, Any] = field(default_factory=dict)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, owner: FeedServer) -> None:
        self.owner = owner
        super().__init__(("127.0.0.1", 0), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that hang up mid-request are expected here; stay quiet about them."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 10  # idle keep-alive connections give up after this
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        """Stay quiet: tests read `FeedServer.requests` instead."""

    def do_GET(self) -> None:
        self.server.owner._handle(self)

    def do_HEAD(self) -> None:
        self.server.owner._handle(self)


class FeedServer:
    """Serves configured paths over real HTTP on 127.0.0.1; use as a context manager."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._routes: dict[str, _Route] = {}
        self._requests: list[RecordedRequest] = []
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._bombs: dict[int, bytes] = {}
        self.base_url = ""

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> FeedServer:
        """Bind a free port and serve in a background daemon thread."""
        self._stopping.clear()
        self._server = _Server(self)
        host, port = self._server.server_address[:2]
        self.base_url = f"http://{host}:{port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting, release slow handlers and close the socket (returns within ~1 s)."""
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=1.0)
        self._server = None
        self._thread = None

    def __enter__(self) -> FeedServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- configuration ---------------------------------------------------------------------

    def url(self, path: str) -> str:
        """Absolute URL of `path` on this server."""
        return self.base_url + (path if path.startswith("/") else "/" + path)

    def serve(
        self,
        path: str,
        body: bytes,
        *,
        content_type: str = "application/rss+xml; charset=utf-8",
        status: int = 200,
        headers: dict[str, str] | None = None,
        etag: bool = True,
        last_modified: str | None = None,
        delay_s: float = 0.0,
    ) -> None:
        """Make `path` answer with `body`; replaces whatever the path served before."""
        route = _Route(
            body=body,
            content_type=content_type,
            status=status,
            headers=dict(headers or {}),
            etag=etag,
            last_modified=last_modified,
            delay_s=delay_s,
        )
        with self._lock:
            self._routes[path] = route

    def fault(self, path: str, kind: str, **options: Any) -> None:
        """Make `path` misbehave: drip, endless, hang, reset, redirect_loop, redirect,
        gzip_bomb, status, empty."""
        known = {
            "drip",
            "endless",
            "hang",
            "reset",
            "redirect_loop",
            "redirect",
            "gzip_bomb",
            "status",
            "empty",
        }
        if kind not in known:
            raise ValueError(f"unknown fault {kind!r}")
        with self._lock:
            self._routes[path] = _Route(fault=kind, options=dict(options))

    # -- inspection ------------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """A copy of the requests received so far, in arrival order."""
        with self._lock:
            return list(self._requests)

    def hits(self, path: str) -> int:
        """How many requests arrived for `path` (with or without a query string)."""
        with self._lock:
            return sum(1 for r in self._requests if r.path.split("?", 1)[0] == path)

    # -- request handling ------------------------------------------------------------------

    def _handle(self, h: _Handler) -> None:
        """Record the request, then answer per the route configured for its path."""
        headers = {k: v for k, v in h.headers.items()}
        with self._lock:
            self._requests.append(
                RecordedRequest(
                    h.path, h.command, headers, time.monotonic(), int(h.client_address[1])
                )
            )
            route = self._routes.get(h.path) or self._routes.get(h.path.split("?", 1)[0])
        if route is None:
            self._send(h, 404, b"not found", {"Content-Type": "text/plain"})
            return
        if route.fault is not None:
            self._fault(h, route)
            return
        if route.delay_s and self._stopping.wait(route.delay_s):
            return
        self._document(h, route)

    def _document(self, h: _Handler, route: _Route) -> None:
        """Answer with a document, or 304 when the client's validators still match."""
        extra = {"Content-Type": route.content_type, **route.headers}
        tag = '"' + hashlib.sha256(route.body).hexdigest()[:20] + '"' if route.etag else None
        if tag:
            extra["ETag"] = tag
        if route.last_modified:
            extra["Last-Modified"] = route.last_modified
        if route.status == 200 and self._unchanged(h, tag, route.last_modified):
            extra.pop("Content-Type", None)
            self._send(h, 304, b"", extra)
            return
        self._send(h, route.status, route.body, extra)

    @staticmethod
    def _unchanged(h: _Handler, tag: str | None, last_modified: str | None) -> bool:
        """True when If-None-Match / If-Modified-Since name the current version."""
        inm = h.headers.get("If-None-Match")
        if tag and inm:
            return tag in [t.strip() for t in inm.split(",")] or inm.strip() == "*"
        ims = h.headers.get("If-Modified-Since")
        return bool(last_modified and ims and ims.strip() == last_modified)

    def _send(self, h: _Handler, status: int, body: bytes, headers: dict[str, str]) -> None:
        """Send a complete response with Content-Length."""
        try:
            h.send_response(status)
            for name, value in headers.items():
                h.send_header(name, value)
            h.send_header("Content-Length", str(len(body)))
            h.end_headers()
            if h.command != "HEAD":
                h.wfile.write(body)
        except OSError:
            h.close_connection = True

    def _start_stream(self, h: _Handler, headers: dict[str, str]) -> None:
        """Send 200 headers for a body delimited by connection close."""
        h.send_response(200)
        for name, value in headers.items():
            h.send_header(name, value)
        h.send_header("Connection", "close")
        h.end_headers()
        h.close_connection = True

    def _fault(self, h: _Handler, route: _Route) -> None:
        """Dispatch to the misbehaviour named by the route."""
        handler = getattr(self, "_fault_" + str(route.fault))
        try:
            handler(h, route.options)
        except OSError:  # the client gave up, as it should
            h.close_connection = True

    def _fault_drip(self, h: _Handler, opts: dict[str, Any]) -> None:
        interval = float(opts.get("interval_s", 1.0))
        body = opts.get("body", rss([{"title": "drip", "link": "http://example.invalid/d"}]))
        self._start_stream(h, {"Content-Type": "application/rss+xml"})
        for i in range(len(body)):
            h.wfile.write(body[i : i + 1])
            h.wfile.flush()
            if self._stopping.wait(interval):
                return

    def _fault_endless(self, h: _Handler, opts: dict[str, Any]) -> None:
        chunk = b"<item><title>again</title></item>" * (_CHUNK // 34)
        self._start_stream(h, {"Content-Type": "application/rss+xml"})
        h.wfile.write(b"<rss><channel>")
        while not self._stopping.is_set():
            h.wfile.write(chunk)

    def _fault_hang(self, h: _Handler, opts: dict[str, Any]) -> None:
        self._stopping.wait(float(opts.get("max_s", 120.0)))
        h.close_connection = True

    def _fault_reset(self, h: _Handler, opts: dict[str, Any]) -> None:
        h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        h.close_connection = True
        h.connection.close()

    def _fault_redirect_loop(self, h: _Handler, opts: dict[str, Any]) -> None:
        path = h.path.split("?", 1)[0]
        n = int(h.path.split("?n=", 1)[1]) if "?n=" in h.path else 0
        target = f"{path}?n={(n + 1) % 2}"  # bounce between two URLs forever
        self._send(h, int(opts.get("status", 302)), b"", {"Location": target})

    def _fault_redirect(self, h: _Handler, opts: dict[str, Any]) -> None:
        self._send(h, int(opts.get("status", 302)), b"", {"Location": str(opts["location"])})

    def _fault_gzip_bomb(self, h: _Handler, opts: dict[str, Any]) -> None:
        size = int(opts.get("size", 64 * 1024 * 1024))
        body = self._bomb(size)
        headers = {"Content-Type": "application/rss+xml", "Content-Encoding": "gzip"}
        self._send(h, 200, body, headers)

    def _fault_status(self, h: _Handler, opts: dict[str, Any]) -> None:
        headers = {"Content-Type": "text/plain", **dict(opts.get("headers") or {})}
        self._send(h, int(opts.get("status", 500)), opts.get("body", b""), headers)

    def _fault_empty(self, h: _Handler, opts: dict[str, Any]) -> None:
        self._send(h, 200, b"", {"Content-Type": "application/rss+xml"})

    def _bomb(self, size: int) -> bytes:
        """A gzip member that inflates to `size` bytes, built without holding them."""
        with self._lock:
            cached = self._bombs.get(size)
        if cached is not None:
            return cached
        comp = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
        zeros = b"\0" * _CHUNK
        parts = [comp.compress(b"<rss><channel><title>")]
        left = size
        while left > 0:
            parts.append(comp.compress(zeros[: min(left, _CHUNK)]))
            left -= _CHUNK
        parts.append(comp.flush())
        body = b"".join(parts)
        with self._lock:
            self._bombs[size] = body
        return body


def _element(name: str, value: str | None) -> str:
    return f"<{name}>{escape(value)}</{name}>" if value is not None else ""


def rss(
    items: Sequence[dict[str, str]],
    *,
    title: str = "Test feed",
    link: str = "http://example.invalid/",
) -> bytes:
    """An RSS 2.0 document; item keys: title, link, guid, description, pubDate."""
    parts = [
        '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>',
        _element("title", title),
        _element("link", link),
        "<description>test</description>",
    ]
    for item in items:
        parts.append("<item>")
        for key in ("title", "link", "guid", "description", "pubDate"):
            parts.append(_element(key, item.get(key)))
        parts.append("</item>\n")
    parts.append("</channel></rss>\n")
    return "".join(parts).encode("utf-8")


def atom(entries: Sequence[dict[str, str]], *, title: str = "Test feed") -> bytes:
    """An Atom 1.0 document; entry keys: title, link, id, summary, updated/published."""
    now = datetime.now(UTC).isoformat(timespec="seconds")
    parts = [
        '<?xml version="1.0" encoding="utf-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom">',
        _element("title", title),
        "<id>urn:test:feed</id>",
        f"<updated>{escape(now)}</updated>",
    ]
    for entry in entries:
        parts.append("<entry>")
        parts.append(_element("title", entry.get("title")))
        if "link" in entry:
            parts.append(f'<link rel="alternate" href={quoteattr(entry["link"])}/>')
        parts.append(_element("id", entry.get("id") or entry.get("guid")))
        parts.append(_element("summary", entry.get("summary") or entry.get("description")))
        parts.append(_element("published", entry.get("published")))
        parts.append(_element("updated", entry.get("updated") or entry.get("published")))
        parts.append("</entry>\n")
    parts.append("</feed>\n")
    return "".join(parts).encode("utf-8")
