"""(being built) Overview, events, event detail and country pages."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from monitor.store.tokens import TokenInfo
from monitor.web.auth import page_user
from monitor.web.templating import render

router = APIRouter(include_in_schema=False)


@router.get("/")
def overview(request: Request, user: Annotated[TokenInfo, Depends(page_user())]) -> Response:
    return render(request, "base.html", {"section": "overview"})
