"""Every error `monitor` raises on purpose.

MonitorError
├── ConfigError          feeds.yaml or environment is wrong (names file, line and field)
├── FetchError           one feed could not be fetched (kind says why; per feed, never fatal)
│   └── FeedGoneError    HTTP 410: the publisher retired the feed
├── ParseError           a document is no feed at all
├── NotifyError          an alert target refused or could not be reached
└── ModelError           a classifier model file is missing, corrupt or of another version
"""

from __future__ import annotations


class MonitorError(Exception):
    """Base of all errors raised by monitor."""


class ConfigError(MonitorError):
    """The configuration is invalid; the message names where."""


class FetchError(MonitorError):
    """A feed fetch failed; `kind` is a short stable word for logs and status."""

    def __init__(
        self,
        kind: str,
        message: str,
        *,
        status: int | None = None,
        retry_after_s: float | None = None,
        answered_by: str | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.status = status
        self.retry_after_s = retry_after_s
        self.answered_by = answered_by  # the URL whose server answered (after redirects)


class FeedGoneError(FetchError):
    """HTTP 410 Gone: stop polling and tell the admins."""


class ParseError(MonitorError):
    """The fetched bytes are not a feed."""


class NotifyError(MonitorError):
    """Delivery to one alert target failed."""


class ModelError(MonitorError):
    """A classifier model could not be loaded."""
