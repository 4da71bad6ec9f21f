"""Fetched bytes to normalized (and, in worker processes, classified) entries.

Parsing and classifying are the CPU-hungry stages (feedparser costs about 0.3 ms per entry,
the classifier about 0.1 ms), and Python threads share one core. A small pool of spawned
processes runs them on the other cores while the main process stores; it also keeps a
pathological document (an entity bomb, a huge malformed feed) from stalling or bloating the
daemon itself. Inline reading (no pool) leaves classification to the writer.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Protocol

from monitor.domain import Assessment, Entry, ItemText
from monitor.errors import ParseError
from monitor.normalize import normalize_entry
from monitor.parse import parse_feed

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class FeedDocument:
    """What a fetched document holds: entries, or the feed links of an HTML page."""

    entries: tuple[Entry, ...]
    malformed: str | None = None
    is_html: bool = False
    feed_links: tuple[str, ...] = ()
    assessments: tuple[Assessment, ...] | None = None  # one per entry, when classified here


@dataclass(frozen=True, slots=True)
class ReadRequest:
    """One document to read, with what normalization needs to know."""

    body: bytes
    content_type: str | None
    url: str
    max_items: int
    fetched_at: datetime
    feed_language: str | None
    feed_country: str | None = None


def read_feed(request: ReadRequest) -> FeedDocument:
    """Parse and normalize a document; raises ParseError when it is no feed at all."""
    parsed = parse_feed(
        request.body, request.content_type, request.url, max_entries=request.max_items
    )
    if parsed.is_html:
        return FeedDocument(entries=(), is_html=True, feed_links=parsed.feed_links)
    language = request.feed_language or parsed.language
    entries = tuple(
        normalize_entry(raw, fetched_at=request.fetched_at, feed_language=language)
        for raw in parsed.entries
    )
    return FeedDocument(entries=entries, malformed=parsed.malformed)


class _Assess(Protocol):
    def assess_many(self, items: Sequence[ItemText]) -> list[Assessment]: ...


# Per worker process, set once by the pool initializer: a process-local cache, not state
# shared with anything (each spawned process has its own copy).
_worker_classifier: _Assess | None = None


def _die_with_parent(parent: int, every_s: float = 2.0) -> None:
    """End this worker once its parent is gone, even after `kill -9`: a worker blocked on the
    pool's queue would otherwise outlive a killed daemon (its siblings keep the pipe open)."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(every_s)
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _start_worker(parent: int, model_path: str | None) -> None:
    _die_with_parent(parent)
    _load_worker_classifier(model_path)


def _load_worker_classifier(model_path: str | None) -> None:
    global _worker_classifier
    from monitor.classify import Classifier

    _worker_classifier = Classifier.load(Path(model_path) if model_path else None)


def read_and_assess(request: ReadRequest) -> FeedDocument:
    """In a worker process: read the document, then classify every entry in one batch."""
    document = read_feed(request)
    if _worker_classifier is None or not document.entries:
        return document
    texts = [
        ItemText(e.title, e.summary, e.language, request.feed_country) for e in document.entries
    ]
    assessments = tuple(_worker_classifier.assess_many(texts))
    return replace(document, assessments=assessments)


class Reader(Protocol):
    """Turns fetched documents into entries."""

    def read(self, request: ReadRequest) -> FeedDocument: ...

    def close(self) -> None: ...


class InlineReader:
    """Reads in the calling thread (tests, tiny installations)."""

    def read(self, request: ReadRequest) -> FeedDocument:
        return read_feed(request)

    def close(self) -> None:
        return None


class ProcessReader:
    """Reads in a pool of spawned parser processes; rebuilds the pool if a process dies."""

    def __init__(self, processes: int, model_path: Path | None = None) -> None:
        self.processes = processes
        self.model_path = model_path
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def _get_pool(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                # spawn, not fork: forking a process that runs threads can copy held locks.
                context = multiprocessing.get_context("spawn")
                self._pool = ProcessPoolExecutor(
                    self.processes,
                    mp_context=context,
                    initializer=_start_worker,
                    initargs=(os.getpid(), str(self.model_path) if self.model_path else None),
                )
            return self._pool

    def read(self, request: ReadRequest) -> FeedDocument:
        pool = self._get_pool()
        try:
            return pool.submit(read_and_assess, request).result()
        except BrokenProcessPool as exc:
            # A parser process died (killed, out of memory): this document is lost for this
            # poll, the next one gets a fresh pool.
            with self._lock:
                if self._pool is pool:
                    self._pool = None
            pool.shutdown(wait=False, cancel_futures=True)
            logger.error("a parser process died; restarting the pool")
            raise ParseError("the parser process died while reading this document") from exc

    def pids(self) -> list[int]:
        """The parser processes' ids (for operators' and benchmarks' resource accounting)."""
        with self._lock:
            pool = self._pool
        processes = getattr(pool, "_processes", None) or {}
        return sorted(processes)

    def close(self) -> None:
        """Stop the workers now: terminated, not waited for (a read in progress is dropped)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is None:
            return
        workers = list((getattr(pool, "_processes", None) or {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.join(timeout=2)


def make_reader(processes: int, model_path: Path | None = None) -> Reader:
    """A process pool of the given size, or in-thread reading for 0."""
    return ProcessReader(processes, model_path) if processes > 0 else InlineReader()
