"""Text normalization shared by the rules and the model, so both read the same characters."""

from __future__ import annotations

import re
import unicodedata

_QUOTES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u201c": '"', "\u201d": '"', "\u02bc": "'"})
_SPACES = re.compile(r"\s+")

# Title and summary are joined by this separator; rules never pair terms across it.
SEPARATOR = " \n "


def normalize(text: str) -> str:
    """Lower-case, NFC-compose (Vietnamese), fold quotes and whitespace, so terms match."""
    text = unicodedata.normalize("NFC", text).translate(_QUOTES).lower()
    return _SPACES.sub(" ", text).strip()


def join_item(title: str, summary: str) -> tuple[str, int]:
    """Normalized title+summary and the offset where the summary starts."""
    head = normalize(title)
    body = normalize(summary)
    if not body:
        return head, len(head)
    return head + SEPARATOR + body, len(head) + len(SEPARATOR)
