"""uvicorn in a thread beside the scheduler, or alone (`monitor serve`).

The socket is bound before the thread starts, so a port already in use fails the command at
once with a clear message. uvicorn installs no signal handlers outside the main thread: the
daemon's own handlers stay in charge of stopping.
"""

from __future__ import annotations

import ipaddress
import logging
import signal
import socket
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from monitor.errors import ConfigError

if TYPE_CHECKING:
    import uvicorn
    from fastapi import FastAPI

logger = logging.getLogger(__name__)

DEFAULT_LISTEN = "127.0.0.1:8080"
START_TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True)
class ListenAddress:
    host: str
    port: int

    @property
    def url(self) -> str:
        """Where a person on this machine opens it (a wildcard bind answers on loopback)."""
        host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(self.host, self.host)
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{self.port}"

    @property
    def loopback_only(self) -> bool:
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return self.host == "localhost"


def parse_listen(value: str) -> ListenAddress:
    """'127.0.0.1:8080', '[::1]:8080', '0.0.0.0:8080' or ':8080' (all addresses); port 0
    lets the system choose (tests), and the address printed is the one bound."""
    text = value.strip()
    host, sep, port_text = text.rpartition(":")
    if not sep or not port_text.isdigit() or not 0 <= int(port_text) < 65536:
        raise ConfigError(f"listen address {value!r}: use HOST:PORT, e.g. 127.0.0.1:8080")
    host = host.strip("[]") or "0.0.0.0"
    return ListenAddress(host=host, port=int(port_text))


def bind_socket(address: ListenAddress) -> socket.socket:
    family = socket.AF_INET6 if ":" in address.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted connections inherit it. Without it each small response waits out the
    # client's delayed ACK: 44 ms for /healthz, against 1 ms with it (measured here).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((address.host, address.port))
    except OSError as exc:
        sock.close()
        raise ConfigError(
            f"cannot listen on {address.host}:{address.port}: {exc.strerror or exc} "
            "(another process has it? choose one with --listen or MONITOR_LISTEN, or --no-web)"
        ) from exc
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def uvicorn_server(app: FastAPI, log_level: str) -> uvicorn.Server:
    # Imported here: `monitor run --no-web` and the other commands never load the web stack.
    import uvicorn

    config = uvicorn.Config(
        app,
        lifespan="off",  # resources belong to the runtime, not the app
        log_config=None,  # our logging setup (and its secret filter) handles uvicorn's lines
        log_level=log_level.lower(),
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=3,
    )
    return uvicorn.Server(config)


class WebServer:
    """The web surface in a background thread of the daemon."""

    def __init__(self, app: FastAPI, address: ListenAddress, log_level: str = "warning") -> None:
        self.address = address
        self._server = uvicorn_server(app, log_level)
        self._socket: socket.socket | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Bind and serve; returns once requests are answered (ConfigError if it cannot)."""
        self._socket = bind_socket(self.address)
        self.address = ListenAddress(self.address.host, self._socket.getsockname()[1])
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, name="web", daemon=True
        )
        self._thread.start()
        waited = threading.Event()
        for _ in range(int(START_TIMEOUT_S / 0.05)):
            if self._server.started or not self._thread.is_alive():
                break
            waited.wait(0.05)
        if not self._server.started:
            raise ConfigError(f"the web server did not start on {self.address.url}")
        logger.info("web: %s (auth: tokens)", self.address.url)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self, timeout_s: float = 4.0) -> None:
        """Stop answering; called before the database is closed."""
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout_s)
        if self._socket is not None:
            self._socket.close()


def serve_until_signalled(app: FastAPI, address: ListenAddress, log_level: str = "info") -> None:
    """`monitor serve`: the same thread as beside the daemon, until SIGTERM or SIGINT.

    Our own handlers, not uvicorn's: uvicorn re-raises the signal once it has stopped, and
    an operator's clean stop should exit 0.
    """
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda _signum, _frame: stop.set())
    server = WebServer(app, address, log_level)
    server.start()
    while not stop.wait(1.0):
        if not server.alive:
            raise ConfigError("the web server stopped unexpectedly (see the log)")
    server.stop()
