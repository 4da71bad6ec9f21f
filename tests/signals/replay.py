"""A local HTTP server on 127.0.0.1 standing in for OONI, IODA and Radar: it replays
recorded responses (Explorer's {"status", "contentType", "body"} wrapper, or plain JSON
files) by path and query, and can answer 429, 500 or hang, so clients meet real sockets."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

FIXTURES = Path(__file__).parent / "fixtures"


@dataclass
class Reply:
    status: int = 200
    body: str = "{}"
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0

    @classmethod
    def file(cls, path: Path) -> Reply:
        data = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(data, dict) and {"status", "body"} <= set(data):
            return cls(
                int(data["status"]), str(data["body"]), data.get("contentType", "application/json")
            )
        return cls(200, path.read_text(encoding="utf-8"))


@dataclass
class Route:
    path: str
    query: dict[str, str]  # these parameters must match; others are ignored
    reply: Reply


class ReplayServer:
    def __init__(self) -> None:
        self.routes: list[Route] = []
        self.requests: list[tuple[str, dict[str, str], dict[str, str]]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                parts = urlsplit(self.path)
                query = dict(parse_qsl(parts.query))
                server.requests.append((parts.path, query, dict(self.headers)))
                reply = server.find(parts.path, query)
                if reply.delay:
                    time.sleep(reply.delay)
                payload = reply.body.encode()
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", reply.content_type)
                    self.send_header("Content-Length", str(len(payload)))
                    for key, value in reply.headers.items():
                        self.send_header(key, value)
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def add(self, path: str, reply: Reply, **query: str) -> None:
        self.routes.insert(0, Route(path, query, reply))  # later routes win

    def find(self, path: str, query: dict[str, str]) -> Reply:
        for route in self.routes:
            if route.path == path and all(query.get(k) == v for k, v in route.query.items()):
                return route.reply
        return Reply(404, json.dumps({"msg": f"no recording for {path}"}))

    def hits(self, path: str) -> int:
        return sum(1 for p, _, _ in self.requests if p == path)

    def __enter__(self) -> ReplayServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def serve() -> Iterator[ReplayServer]:
    with ReplayServer() as server:
        yield server
