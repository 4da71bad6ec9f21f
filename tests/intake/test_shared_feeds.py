"""Every real-world document in the shared corpus parses into entries or is flagged cleanly.

The documents are other people's writing: they are read from the shared folder at test time
and never copied into this repository.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from monitor.errors import ParseError
from monitor.intake.normalize import normalize_entry
from monitor.intake.parse import parse_feed

NOW = datetime(2026, 8, 23, 12, 0, tzinfo=UTC)


def shared_feeds_dir() -> Path:
    """The shared feed corpus: $MONITOR_SHARED_DIR/feeds, else ../shared/feeds next to the repo."""
    root = os.environ.get("MONITOR_SHARED_DIR")
    base = Path(root) if root else Path(__file__).resolve().parents[2].parent / "shared"
    return base / "feeds"


FEEDS = shared_feeds_dir()
MANIFEST = FEEDS / "manifest.jsonl"


def manifest() -> list[dict[str, object]]:
    if not MANIFEST.is_file():
        return []
    lines = MANIFEST.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


ENTRIES = manifest()


def test_corpus_is_present() -> None:
    if not ENTRIES:
        pytest.skip(f"shared feed corpus not found at {FEEDS} (set MONITOR_SHARED_DIR)")
    listed = {str(m["file"]) for m in ENTRIES}
    on_disk = {p.name for p in FEEDS.iterdir() if p.name not in {"manifest.jsonl", "README.md"}}
    assert listed == on_disk


@pytest.mark.parametrize("meta", ENTRIES, ids=[str(m["file"]) for m in ENTRIES])
def test_shared_document(meta: dict[str, object]) -> None:
    name = str(meta["file"])
    body = (FEEDS / name).read_bytes()
    try:
        feed = parse_feed(body, None, f"https://corpus.example.invalid/{name}")
    except ParseError as exc:
        print(f"{name}: rejected: {exc}")
        assert str(exc)
        assert not str(meta["format"]).startswith(("rss", "atom", "json"))
        return
    entries = [
        normalize_entry(e, fetched_at=NOW, feed_language=feed.language) for e in feed.entries
    ]
    flags = [f for f in (feed.malformed, "html" if feed.is_html else None) if f]
    print(f"{name}: {len(entries)} entries; {'; '.join(flags) or 'clean'}")
    if feed.is_html:
        assert meta["format"] == "html" and not entries
        return
    for entry in entries:
        assert entry.guid and entry.content_hash
        assert entry.published.tzinfo is not None
        if entry.title == "":
            # only entries with neither title nor text may stay untitled
            assert entry.summary == ""
    carries_items = any(tag in body for tag in (b"<item", b"<entry", b":item", b":entry"))
    if carries_items:
        assert entries, f"{name} has item elements but yielded no entries"


def test_known_documents_yield_expected_titles() -> None:
    if not ENTRIES:
        pytest.skip(f"shared feed corpus not found at {FEEDS}")
    expectations = {
        "rss20-ibash-windows-1251.xml": "Цитата",
        "rss20-latin2-iso-8859-2.xml": "ZAŻÓŁĆ",
        "rss20-golem-iso-8859-1.xml": None,
        "rss20-urdu-rtl.xml": None,
    }
    for name, fragment in expectations.items():
        feed = parse_feed((FEEDS / name).read_bytes(), None, "https://corpus.example.invalid/")
        assert feed.entries and all(e.title for e in feed.entries), name
        if fragment:
            assert any(fragment in (e.title or "") for e in feed.entries), name
