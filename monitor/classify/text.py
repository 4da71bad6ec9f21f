"""Text normalization shared by the rules and the model, so both read the same characters."""

from __future__ import annotations

import re
import unicodedata

_QUOTES = {"\u2019": "'", "\u2018": "'", "\u201c": '"', "\u201d": '"', "\u02bc": "'"}
_ANY_QUOTE = re.compile("[" + "".join(_QUOTES) + "]")

# Title and summary are joined by this separator; rules never pair terms across it.
SEPARATOR = " \n "


def normalize(text: str) -> str:
    """Lower-case, NFC-compose (Vietnamese), fold quotes and whitespace, so terms match."""
    # Turkish capital İ lower-cases to i + a combining dot, which no term would match.
    text = unicodedata.normalize("NFC", text).replace("\u0130", "I")
    if _ANY_QUOTE.search(text):  # str.translate is slow; most texts need nothing done
        for quote, plain in _QUOTES.items():
            text = text.replace(quote, plain)
    # str.split() splits on the same (Unicode) whitespace as `\s+`, and drops the ends.
    return " ".join(text.lower().split())


def join_item(title: str, summary: str) -> tuple[str, int]:
    """Normalized title+summary and the offset where the summary starts."""
    head = normalize(title)
    body = normalize(summary)
    if not body:
        return head, len(head)
    return head + SEPARATOR + body, len(head) + len(SEPARATOR)
