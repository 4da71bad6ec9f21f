"""Logging configuration, applied once by the CLI; secrets are scrubbed from every record."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class SecretFilter(logging.Filter):
    """Replaces known secret values (Apprise URLs, tokens, passwords) in log records."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets: tuple[str, ...] = ()
        self.update(secrets)

    def update(self, secrets: Iterable[str]) -> None:
        # Longest first, so a URL is replaced whole before a token inside it is.
        self.secrets = tuple(sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True))

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        message = record.getMessage()
        scrubbed = self.scrub(message)
        if scrubbed != message:
            record.msg, record.args = scrubbed, None
        # A traceback quotes exception texts, and those may hold a URL: format it here, once,
        # scrubbed (formatters reuse exc_text rather than formatting the exception again).
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.scrub(record.exc_text)
        if record.stack_info:
            record.stack_info = self.scrub(record.stack_info)
        return True

    def scrub(self, text: str) -> str:
        """`text` with every known secret replaced by ***."""
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text


def configure_logging(level: str = "INFO") -> SecretFilter:
    """One stderr handler with the secret filter; returns the filter so it can be updated."""
    secret_filter = SecretFilter()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.addFilter(secret_filter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("httpx", "httpcore", "apscheduler", "apprise", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return secret_filter
