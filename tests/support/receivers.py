"""Real alert receivers on 127.0.0.1 for tests: an SMTP server and a JSON webhook.

Both run in background threads, find a free port by binding to port 0, and collect what
they receive so a test can wait for it. `SmtpReceiver` can be stopped and started again
on the same port, to test "mail server down, then back".
"""

from __future__ import annotations

import email
import email.policy
import json
import socket
import threading
import time
from collections.abc import Callable
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

HOST = "127.0.0.1"


def free_port(host: str = HOST) -> int:
    """Return a TCP port that was free a moment ago (bind to port 0, then release it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _wait_until(cond: threading.Condition, ready: Callable[[], bool], timeout: float) -> None:
    """Wait on `cond` (held by the caller) until `ready()` or the timeout passes."""
    deadline = time.monotonic() + timeout
    while not ready():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        cond.wait(remaining)


class _SmtpHandler:
    """aiosmtpd handler that parses each DATA into an EmailMessage for the receiver."""

    def __init__(self, receiver: SmtpReceiver) -> None:
        self._receiver = receiver

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        """Accept every message and hand it to the receiver."""
        raw = envelope.original_content or envelope.content or b""
        data = raw if isinstance(raw, bytes) else raw.encode("utf-8")
        message = email.message_from_bytes(data, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self._receiver._add(message, list(envelope.rcpt_tos))
        return "250 Message accepted for delivery"


class SmtpReceiver:
    """A plain SMTP server (no TLS, no auth) on 127.0.0.1 that keeps what it receives."""

    def __init__(self, port: int | None = None) -> None:
        self.host = HOST
        self.port = port if port is not None else free_port()
        self.messages: list[EmailMessage] = []
        self.recipients: list[list[str]] = []  # envelope RCPT TO per message
        self._cond = threading.Condition()
        self._controller: Controller | None = None

    @property
    def running(self) -> bool:
        """Whether the server currently accepts connections."""
        return self._controller is not None

    def start(self) -> None:
        """Start listening (again) on the same host and port."""
        if self._controller is not None:
            return
        controller = Controller(
            _SmtpHandler(self),
            hostname=self.host,
            port=self.port,
            ready_timeout=10.0,
        )
        controller.start()
        self._controller = controller

    def stop(self) -> None:
        """Stop listening; connections are refused until `start()` is called again."""
        if self._controller is None:
            return
        self._controller.stop()
        self._controller = None

    def _add(self, message: EmailMessage, rcpt_tos: list[str]) -> None:
        with self._cond:
            self.messages.append(message)
            self.recipients.append(rcpt_tos)
            self._cond.notify_all()

    def wait_for(self, count: int, timeout: float = 10.0) -> list[EmailMessage]:
        """Wait until at least `count` messages arrived; return a copy of all of them."""
        with self._cond:
            _wait_until(self._cond, lambda: len(self.messages) >= count, timeout)
            return list(self.messages)

    def apprise_url(self, to: str = "alerts@example.org") -> str:
        """An Apprise `mailto://` URL that delivers to this server in plain SMTP."""
        # mailto:// (not mailtos://) is plain SMTP; with no user/pass Apprise does not log in.
        return f"mailto://{self.host}:{self.port}?from=monitor@example.org&to={to}"

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class _WebhookHandler(BaseHTTPRequestHandler):
    """Records JSON bodies and answers with the receiver's current status."""

    server: _WebhookServer

    def do_POST(self) -> None:  # noqa: N802
        """Store the JSON body, then answer (or hang, if told to)."""
        receiver = self.server.receiver
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body: Any = json.loads(raw.decode("utf-8")) if raw else {}
        except ValueError:
            body = {"_raw": raw.decode("utf-8", "replace")}
        if not isinstance(body, dict):
            body = {"_json": body}
        receiver._add(self.path, dict(self.headers.items()), body)
        if receiver.should_hang():
            receiver.hang_here()
            return  # the connection is dropped: the target never confirmed this post
        status = receiver.status
        payload = b'{"ok": true}' if status < 400 else b'{"ok": false}'
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)  # unbuffered: the answer is on the wire now
        receiver.answered(self.path, body, status)

    do_PUT = do_POST  # noqa: N815

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        """Keep test output quiet."""


class _WebhookServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, receiver: WebhookReceiver) -> None:
        super().__init__((HOST, 0), _WebhookHandler)
        self.receiver = receiver


class WebhookReceiver:
    """An HTTP endpoint on 127.0.0.1 for Apprise's `json://` webhook; keeps parsed bodies."""

    def __init__(self, path: str = "/hook") -> None:
        self.path = path
        self.posts: list[dict[str, Any]] = []
        self.requests: list[tuple[str, dict[str, str]]] = []  # (path, headers) per post
        self.status = 200
        self.hang = False
        self.hang_max_s = 60.0
        self._cond = threading.Condition()
        self._release = threading.Event()
        self._server: _WebhookServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    @property
    def url(self) -> str:
        """The plain http:// URL of the endpoint."""
        return f"http://{HOST}:{self.port}{self.path}"

    def start(self) -> None:
        """Start serving on a free port."""
        if self._server is not None:
            return
        self._release.clear()
        server = _WebhookServer(self)
        self.port = int(server.server_address[1])
        thread = threading.Thread(target=server.serve_forever, name="webhook-receiver")
        thread.daemon = True
        thread.start()
        self._server, self._thread = server, thread

    def stop(self) -> None:
        """Release hanging requests and stop serving."""
        self._release.set()
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)
        self._server, self._thread = None, None

    def _add(self, path: str, headers: dict[str, str], body: dict[str, Any]) -> None:
        with self._cond:
            self.posts.append(body)
            self.requests.append((path, headers))
            self._cond.notify_all()

    def should_hang(self) -> bool:
        """Whether the post being handled gets no answer (until released or hang_max_s)."""
        return self.hang and not self._release.is_set()

    def hang_here(self) -> None:
        self._release.wait(self.hang_max_s)

    def answered(self, path: str, body: dict[str, Any], status: int) -> None:
        """Called once a post's answer is written (subclasses record acknowledgements)."""

    def wait_for(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Wait until at least `count` posts arrived; return a copy of all of them."""
        with self._cond:
            _wait_until(self._cond, lambda: len(self.posts) >= count, timeout)
            return list(self.posts)

    def apprise_url(self) -> str:
        """An Apprise `json://` URL that posts to this endpoint."""
        return f"json://{HOST}:{self.port}{self.path}"

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
