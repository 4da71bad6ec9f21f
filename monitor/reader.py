"""Fetched bytes to normalized entries, in the fetch thread or in parser processes.

Parsing is the CPU-hungriest stage (feedparser costs about 0.2 ms per entry) and Python
threads share one core. A small pool of spawned parser processes runs it on the other cores
while the main process fetches, classifies and stores; it also keeps a pathological document
(an entity bomb, a huge malformed feed) from stalling or bloating the daemon itself.

The parser processes only parse: they import feedparser and the normalizer, not the
classifier (about 30 MB per process), and the writer classifies only the entries that are
new after deduplication, once, in the main process.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from monitor.domain import Entry
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


@dataclass(frozen=True, slots=True)
class ReadRequest:
    """One document to read, with what normalization needs to know."""

    body: bytes
    content_type: str | None
    url: str
    max_items: int
    fetched_at: datetime
    feed_language: str | None


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


def _die_with_parent(parent: int, every_s: float = 2.0) -> None:
    """End this worker once its parent is gone, even after `kill -9`: a worker blocked on the
    pool's queue would otherwise outlive a killed daemon (its siblings keep the pipe open)."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(every_s)
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


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

    def __init__(self, processes: int) -> None:
        self.processes = processes
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
                    initializer=_die_with_parent,
                    initargs=(os.getpid(),),
                )
            return self._pool

    def read(self, request: ReadRequest) -> FeedDocument:
        pool = self._get_pool()
        try:
            return pool.submit(read_feed, request).result()
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


def make_reader(processes: int) -> Reader:
    """A process pool of the given size, or in-thread reading for 0."""
    return ProcessReader(processes) if processes > 0 else InlineReader()
