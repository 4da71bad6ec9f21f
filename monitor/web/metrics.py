"""(being built) Prometheus /metrics."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from monitor.web.context import WebContext

router = APIRouter()


def install(app: FastAPI, context: WebContext) -> None:
    """Register the app's metrics registry and HTTP middleware."""
