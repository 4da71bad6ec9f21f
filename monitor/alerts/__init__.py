"""The alert layer: decide (routing), render (text for a target), notify (deliver)."""

from monitor.alerts.digest import render_digest
from monitor.alerts.markup import BodyFormat, RenderedAlert, format_for_url
from monitor.alerts.notify import (
    AppriseNotifier,
    ConsoleNotifier,
    Notifier,
    RecordingNotifier,
    redact_url,
)
from monitor.alerts.render import render

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
