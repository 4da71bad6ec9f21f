"""Secrets never reach the log: not in messages, and not in the tracebacks of exceptions."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from monitor.daemon.logsetup import FORMAT, SecretFilter

SECRET_URL = "slack://T0KEN-A/B0KEN-B/C0KEN-C-secret"


@pytest.fixture
def log() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.addFilter(SecretFilter([SECRET_URL, "C0KEN-C-secret"]))
    logger = logging.getLogger("test.secrets")
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    yield logger, stream
    logger.removeHandler(handler)


def test_a_secret_in_the_message_is_replaced(log: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = log
    logger.error("sending to %s failed", SECRET_URL)
    text = stream.getvalue()
    assert "sending to *** failed" in text and "C0KEN" not in text


def test_a_secret_in_a_traceback_is_replaced(log: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = log
    try:
        raise ConnectionError(f"cannot reach {SECRET_URL} (token C0KEN-C-secret)")
    except ConnectionError:
        logger.exception("notifier failed")
    text = stream.getvalue()
    assert "Traceback" in text and "ConnectionError: cannot reach ***" in text
    assert "C0KEN" not in text


def test_a_record_without_secrets_is_left_alone(log: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = log
    logger.info("polled %d feeds", 3)
    assert stream.getvalue().rstrip().endswith("polled 3 feeds")


def test_settings_and_runtime_reprs_hide_the_database_password_and_environment() -> None:
    from pathlib import Path

    from monitor.daemon.bootstrap import Runtime, Settings

    settings = Settings(Path("feeds.yaml"), "postgresql://monitor:Pw-Secret-123@db.internal/m")
    assert "Pw-Secret-123" not in repr(settings) and "db.internal" in repr(settings)
    runtime_fields = {f.name: f.repr for f in Runtime.__dataclass_fields__.values()}
    assert runtime_fields["env"] is False
