"""Cursor pagination for the JSON API: `{"items": [...], "next": "..."}` and a Link header.

A cursor is the sort key of the last row shown, so pages stay right while new rows arrive
(an offset would skip or repeat them). It is opaque to clients: base64 of a JSON list.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import Any

from fastapi import HTTPException, Request
from starlette.responses import Response

MAX_LIMIT = 200
DEFAULT_LIMIT = 50


def encode_cursor(values: list[Any]) -> str:
    raw = json.dumps(values, separators=(",", ":"), default=str).encode("utf-8")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_cursor(cursor: str | None) -> list[Any] | None:
    """The sort key a cursor carries; a 400 naming the parameter when it is not ours."""
    if not cursor:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (binascii.Error, ValueError, UnicodeError) as exc:
        raise HTTPException(400, "cursor: not a cursor this API gave out") from exc
    if not isinstance(values, list):
        raise HTTPException(400, "cursor: not a cursor this API gave out")
    return values


def clamp_limit(limit: int) -> int:
    if limit < 1:
        raise HTTPException(400, f"limit: must be 1..{MAX_LIMIT}, got {limit}")
    return min(limit, MAX_LIMIT)


def link_next(request: Request, response: Response, next_cursor: str | None) -> None:
    """RFC 8288 `Link: <...>; rel="next"` beside the body's `next`."""
    if next_cursor is not None:
        url = request.url.include_query_params(cursor=next_cursor)
        response.headers["Link"] = f'<{url}>; rel="next"'


def time_id_cursor(after: list[Any]) -> tuple[datetime, int]:
    """A cursor of a list sorted by a time, then id: the [time, id] of its last row."""
    try:
        raw, last_id = after
        return datetime.fromisoformat(raw), int(last_id)
    except (TypeError, ValueError) as exc:
        raise HTTPException(400, "cursor: not a cursor of this list") from exc
