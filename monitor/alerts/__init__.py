"""The alert layer: decide (routing), render (text for a target), notify (deliver)."""

from monitor.alerts.notify import (
    AppriseNotifier,
    ConsoleNotifier,
    Notifier,
    RecordingNotifier,
    redact_url,
)
from monitor.alerts.render import (
    BodyFormat,
    RenderedAlert,
    format_for_url,
    render,
    render_digest,
)

__all__ = [
    "AppriseNotifier",
    "BodyFormat",
    "ConsoleNotifier",
    "Notifier",
    "RecordingNotifier",
    "RenderedAlert",
    "format_for_url",
    "redact_url",
    "render",
    "render_digest",
]
