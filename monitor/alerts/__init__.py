"""Alerts: which routes want a message and when (routing), the outbox rows written with what
earned them, rendering per target (markup, render, the marked quote, digests), feed-health
notices, sending through Apprise (notify) and the sender that delivers the outbox.

May import: monitor's core modules, config, classify (the term matcher, for the quote) and
store. Not events, daemon or cli.
"""

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
