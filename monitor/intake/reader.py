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

import contextlib
import logging
import os
import pickle
import struct
import subprocess
import sys
import threading
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass, replace
from datetime import datetime
from typing import IO, Any, Protocol

from monitor.domain import Entry
from monitor.errors import ParseError
from monitor.intake.memory import release_free_memory, rss_mb, tune_malloc
from monitor.intake.normalize import normalize_entry
from monitor.intake.parse import parse_feed

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


# A document still unread after this long (queue wait included) is abandoned and its process
# killed and replaced: one pathological feed must not hold up the parsing of all the others.
PARSE_DEADLINE_S = 30.0
# A parser process that has grown by more than this since its first document retires: it
# answers what it was sent and exits, and a fresh one takes the next documents. Huge
# documents (a 3 MB feed of 100,000 tiny items) left about 1.5 MB each behind that no trim
# returns, so one process had grown from 25 to 60 MB by the end of a 10,000-feed first poll
# (bench/bench_scale.py); a new process costs about 0.25 s of CPU once.
PARSER_MAX_GROWTH_MB = 8.0
# Documents at least this large are followed by a trim of the parser's freed heap.
LARGE_DOCUMENT_BYTES = 1024 * 1024


class ParserProcessDied(ParseError):
    """The parser process died (or was killed over another document) before answering."""


class ParserProcessRetired(ParserProcessDied):
    """The parser process had retired (grown too much) before this document was sent."""


class ProcessReader:
    """Reads in parser processes of our own (`serve_stdio`), one request after
    another over each one's stdin and stdout; a process that dies is replaced at the next read.

    Plain child processes, not multiprocessing: no resource-tracker process (15 MB), handles
    we own (pids, termination), and a parser whose daemon is killed sees its stdin close and
    exits.
    """

    def __init__(
        self,
        processes: int,
        deadline_s: float = PARSE_DEADLINE_S,
        max_growth_mb: float = PARSER_MAX_GROWTH_MB,
    ) -> None:
        self.processes = processes
        self.deadline_s = deadline_s
        self.max_growth_mb = max_growth_mb
        self._workers: list[_ParserProcess] = []
        self._lock = threading.Lock()
        self._closed = False

    def read(self, request: ReadRequest) -> FeedDocument:
        """Parse one document; a document caught in another's trouble is read once more."""
        died = False
        while True:
            try:
                return self._read_once(request)
            except ParserProcessRetired:
                continue  # it was sent nothing: the process that replaced it reads it
            except ParserProcessDied:
                # Its process died, or was killed over a document queued before it: try a
                # fresh one, once.
                if died:
                    raise
                died = True

    def _read_once(self, request: ReadRequest) -> FeedDocument:
        worker = self._least_busy()
        try:
            return worker.submit(request).result(timeout=self.deadline_s)
        except TimeoutError:
            logger.error(
                "parser process %d spent more than %.0f s on %s; replacing it",
                worker.pid, self.deadline_s, request.url,
            )  # fmt: skip
            worker.kill()
            raise ParseError(f"parsing took longer than {self.deadline_s:.0f} s") from None

    def _least_busy(self) -> _ParserProcess:
        """The ready process with the fewest documents pending, waiting for one if need be.

        A process that has grown too much is sent nothing more and keeps its place until it
        has answered what it holds and exited; only then does a fresh one start in its place.
        Starting the successor at once would hold both in memory (~30 MB each) while the old
        one drains, the very peak that retiring it is meant to avoid.
        """
        while True:
            draining: list[_ParserProcess] = []
            with self._lock:
                if self._closed:
                    # Shutting down: the reads still under way end here, no new process starts.
                    raise ParseError("the parser processes are stopped")
                for index, worker in enumerate(self._workers):
                    if not worker.alive():
                        if worker.retiring:
                            logger.info("parser process %d has retired", worker.pid)
                        else:
                            logger.error("a parser process died; starting a new one")
                        worker.stop()
                        self._workers[index] = _ParserProcess(self.max_growth_mb)
                    elif worker.retiring:
                        draining.append(worker)
                while len(self._workers) < self.processes:
                    self._workers.append(_ParserProcess(self.max_growth_mb))
                ready = [worker for worker in self._workers if not worker.retiring]
            # Outside the lock: closing its input waits for a write in progress (a large body
            # into a full pipe), which must not hold up every other read.
            for worker in draining:
                worker.retire()  # it answers what it holds, then exits at the end of its input
            if ready:
                return min(ready, key=lambda worker: worker.pending())
            if not draining[0].wait_exit(self.deadline_s):
                logger.error(
                    "parser process %d did not finish within %.0f s of retiring; killing it",
                    draining[0].pid, self.deadline_s,
                )  # fmt: skip
                draining[0].kill()

    def pids(self) -> list[int]:
        """The parser processes' ids (for operators' and benchmarks' resource accounting)."""
        with self._lock:
            workers = list(self._workers)
            return sorted(worker.pid for worker in workers if worker.alive())

    def close(self) -> None:
        """Stop the workers now: terminated, not waited for (a read in progress is dropped)."""
        with self._lock:
            self._closed = True
            workers, self._workers = self._workers, []
        for worker in workers:
            worker.stop()


_HEADER = struct.Struct("!Q")  # the length of the pickle that follows
# `-c`, not `-m monitor.intake.reader`: run as __main__, the module's classes would pickle under the
# wrong name.
_WORKER_MAIN = "from monitor.intake.reader import serve_stdio; serve_stdio()"


class _ParserProcess:
    """One parser process and the thread that hands its answers, in order, to the callers."""

    def __init__(self, max_growth_mb: float = PARSER_MAX_GROWTH_MB) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-c", _WORKER_MAIN, repr(max_growth_mb)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        self.pid = self._process.pid
        self._pending: deque[Future[FeedDocument]] = deque()
        self._lock = threading.Lock()  # guards _pending and _dead
        self._write_lock = threading.Lock()  # one request on the pipe at a time
        self._dead = False
        self._exited = threading.Event()  # its answers thread has seen the end of its output
        self.retiring = False  # it said it has grown too much: no new documents for it
        threading.Thread(target=self._answers, name=f"parser-{self.pid}", daemon=True).start()

    def alive(self) -> bool:
        return not self._dead and self._process.poll() is None

    def pending(self) -> int:
        return len(self._pending)

    def submit(self, request: ReadRequest) -> Future[FeedDocument]:
        future: Future[FeedDocument] = Future()
        stdin = self._process.stdin
        # Two locks: a writer blocked on a full pipe must not keep the answers thread from
        # taking its futures, or the process stops reading while it waits to answer.
        with self._write_lock:
            with self._lock:
                if self._dead or stdin is None:
                    future.set_exception(ParserProcessDied("the parser process is gone"))
                    return future
                if stdin.closed:
                    future.set_exception(ParserProcessRetired("the parser process retired"))
                    return future
                self._pending.append(future)  # answers come back in the order requests went
            try:
                _write_request(stdin, request)
            except (OSError, ValueError):
                # The pipe is broken: end the process; the answers thread then fails every
                # pending read, this one included.
                self._process.kill()
        return future

    def _answers(self) -> None:
        stdout = self._process.stdout
        while stdout is not None:
            try:
                answer = _read_message(stdout)
            except Exception:  # noqa: BLE001 - a garbled answer ends this process, not the daemon
                logger.exception("unreadable answer from parser process %d", self.pid)
                self._process.kill()
                answer = None
            if answer is None:
                break
            ok, value, grown = answer
            if grown:
                self.retiring = True
            with self._lock:
                future = self._pending.popleft()
            if ok:
                future.set_result(value)
            else:
                future.set_exception(ParseError(value))
        with self._lock:
            self._dead = True
            lost, self._pending = list(self._pending), deque()
        for future in lost:
            # Killed or out of memory: this document is lost for this poll, not the others.
            future.set_exception(
                ParserProcessDied("the parser process died while reading this document")
            )
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._process.wait(timeout=5)  # reaped: a retired process exits on its own
        self._exited.set()

    def wait_exit(self, timeout: float) -> bool:
        """Wait until the process has answered all it was sent and ended; False on timeout."""
        return self._exited.wait(timeout)

    def retire(self) -> None:
        """Send it nothing more: its input ends, so it answers what it was sent and exits."""
        with self._write_lock, contextlib.suppress(OSError, ValueError):
            if self._process.stdin is not None:
                self._process.stdin.close()

    def kill(self) -> None:
        """End the process now; its answers thread then fails every read still pending."""
        with self._lock:
            self._dead = True  # replaced at the next read, even before it has exited
        with contextlib.suppress(OSError):
            self._process.kill()

    def stop(self) -> None:
        with self._lock:
            self._dead = True
        with contextlib.suppress(OSError, ValueError):
            if self._process.stdin is not None:
                self._process.stdin.close()
        self._process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._process.wait(timeout=2)


def _read_framed(stream: IO[bytes]) -> bytes | None:
    """One length-prefixed run of bytes from a pipe; None at its end."""
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        return None
    (size,) = _HEADER.unpack(header)
    data = stream.read(size)
    if len(data) < size:
        return None
    return data


def _read_message(stream: IO[bytes]) -> Any:
    """One length-prefixed pickle from a pipe; None at its end."""
    data = _read_framed(stream)
    return None if data is None else pickle.loads(data)


def _write_framed(stream: IO[bytes], data: bytes) -> None:
    """One length-prefixed run of bytes, as `_read_framed` reads it."""
    stream.write(_HEADER.pack(len(data)))
    stream.write(data)  # not header + data: that would copy a large message once more


def _write_message(stream: IO[bytes], value: Any) -> None:
    _write_framed(stream, pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))
    stream.flush()


def _write_request(stream: IO[bytes], request: ReadRequest) -> None:
    """A request as its pickle without the body, then the body's bytes as they are: a large
    document is neither copied into a pickle here nor out of one in the parser."""
    _write_framed(
        stream, pickle.dumps(replace(request, body=b""), protocol=pickle.HIGHEST_PROTOCOL)
    )
    _write_framed(stream, request.body)
    stream.flush()


def _read_request(stream: IO[bytes]) -> ReadRequest | None:
    """One request written by `_write_request`; None at the end of the pipe."""
    request = _read_message(stream)
    if not isinstance(request, ReadRequest):
        return None
    body = _read_framed(stream)
    return None if body is None else replace(request, body=body)


def serve(
    requests: IO[bytes], answers: IO[bytes], max_growth_mb: float = PARSER_MAX_GROWTH_MB
) -> None:
    """A parser process's loop: read requests until the daemon closes the pipe (or dies).

    Each answer says whether this process has grown by more than `max_growth_mb` since its
    first document; the daemon then sends it nothing more and starts another.
    """
    baseline: float | None = None
    while (request := _read_request(requests)) is not None:
        if baseline is None:
            baseline = rss_mb()
        large = len(request.body) >= LARGE_DOCUMENT_BYTES
        try:
            answer: tuple[bool, Any] = (True, read_feed(request))
        except ParseError as exc:
            answer = (False, str(exc))
        except Exception as exc:  # noqa: BLE001 - one document's surprise must not end the process
            answer = (False, f"parser failure: {exc!r}"[:300])
        del request
        if large:
            release_free_memory()
        grown = baseline > 0 and rss_mb() - baseline > max_growth_mb
        _write_message(answers, (*answer, grown))


def make_reader(processes: int) -> Reader:
    """A process pool of the given size, or in-thread reading for 0."""
    return ProcessReader(processes) if processes > 0 else InlineReader()


def serve_stdio() -> None:
    """A parser process's entry point (`ProcessReader` starts it with `python -c`)."""
    # Answers go to a private copy of stdout; anything a library prints goes to stderr instead
    # of corrupting them.
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    tune_malloc(arenas=1)  # one thread; large documents mapped and unmapped, not kept
    max_growth_mb = float(sys.argv[1]) if len(sys.argv) > 1 else PARSER_MAX_GROWTH_MB
    serve(sys.stdin.buffer, answers, max_growth_mb)
