"""Parser processes: same result as in-thread reading, and no worker outlives its daemon."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from monitor.intake.reader import InlineReader, ProcessReader, ReadRequest
from tests.support.feedserver import rss

ITEMS = [
    {
        "title": "Kazakhstan blocks Telegram during protests",
        "description": "The government ordered operators to block the messenger nationwide.",
        "guid": "kz-1",
        "link": "https://news.example.org/kz/1",
    },
    {"title": "Harvest festival opens", "description": "Music and food.", "guid": "x-1"},
]
REQUEST = ReadRequest(
    body=rss(ITEMS),
    content_type="application/rss+xml; charset=utf-8",
    url="https://news.example.org/feed.xml",
    max_items=50,
    fetched_at=datetime(2026, 11, 23, tzinfo=UTC),
    feed_language="en",
)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/status").read_text() if Path(f"/proc/{pid}").exists() else ""
    return "State:\tZ" not in status


def _gone_within(pids: list[int], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not any(_alive(pid) for pid in pids):
            return True
        time.sleep(0.1)
    return False


def test_process_reader_reads_like_inline_without_the_classifier_then_stops() -> None:
    reader = ProcessReader(2)
    try:
        document = reader.read(REQUEST)
        pids = reader.pids()
        # The parser processes stay slim: no classifier, so not even numpy is loaded there.
        maps = [Path(f"/proc/{pid}/maps").read_text() for pid in pids]
    finally:
        reader.close()
    inline = InlineReader().read(REQUEST)
    assert document.entries == inline.entries
    assert [entry.title for entry in document.entries] == [item["title"] for item in ITEMS]
    assert pids and not any("_multiarray_umath" in text for text in maps)
    assert pids and _gone_within(pids, 5), "parser processes outlived close()"


def test_parser_processes_die_with_a_killed_parent(tmp_path: Path) -> None:
    script = tmp_path / "victim.py"
    script.write_text(
        "import os, signal, sys\n"
        f"sys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r})\n"
        "from tests.intake.test_reader import REQUEST\n"
        "from monitor.intake.reader import ProcessReader\n"
        "if __name__ == '__main__':\n"
        "    reader = ProcessReader(2)\n"
        "    reader.read(REQUEST)\n"
        "    print(' '.join(map(str, reader.pids())), flush=True)\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n",
        encoding="utf-8",
    )
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120
    )
    pids = [int(pid) for pid in result.stdout.split()]
    assert pids, result.stderr
    assert _gone_within(pids, 10), "parser processes outlived a kill -9 of their parent"


def test_a_killed_parser_process_is_replaced_at_the_next_read() -> None:
    reader = ProcessReader(1)
    try:
        reader.read(REQUEST)
        (first,) = reader.pids()
        os.kill(first, signal.SIGKILL)
        assert _gone_within([first], 5)
        document = reader.read(REQUEST)
        (second,) = reader.pids()
    finally:
        reader.close()
    assert second != first
    assert [entry.title for entry in document.entries] == [item["title"] for item in ITEMS]


def test_many_concurrent_reads_of_large_documents_do_not_jam_the_pipes() -> None:
    # Requests and answers far larger than a pipe's buffer, from many threads at once: a
    # writer blocked on a full pipe must not stop the answers from being taken.
    items = [
        {"title": f"Story {n}", "description": "word " * 400, "guid": f"g-{n}"} for n in range(60)
    ]
    big = ReadRequest(
        body=rss(items),
        content_type="application/rss+xml; charset=utf-8",
        url="https://news.example.org/feed.xml",
        max_items=100,
        fetched_at=datetime(2026, 11, 23, tzinfo=UTC),
        feed_language="en",
    )
    reader = ProcessReader(1)
    try:
        with ThreadPoolExecutor(16) as pool:
            documents = list(pool.map(lambda _: reader.read(big), range(64), timeout=60))
    finally:
        reader.close()
    assert all(len(document.entries) == 60 for document in documents)


def _slow_request() -> ReadRequest:
    """A document feedparser needs seconds for: 20,000 entries, none trimmed."""
    items = [{"title": f"Story {n}", "guid": f"g-{n}"} for n in range(20_000)]
    return ReadRequest(
        body=rss(items), content_type=None, url="https://slow.example.org/feed.xml",
        max_items=100_000, fetched_at=datetime(2026, 11, 23, tzinfo=UTC), feed_language="en",
    )  # fmt: skip


def _read_in_background(reader: ProcessReader, request: ReadRequest) -> tuple[Any, list[Any]]:
    """Start reading `request` in a thread; returns the thread and the ParseErrors it met."""
    import threading

    from monitor.errors import ParseError

    errors: list[ParseError] = []

    def read() -> None:
        try:
            reader.read(request)
        except ParseError as exc:
            errors.append(exc)

    thread = threading.Thread(target=read)
    thread.start()
    return thread, errors


def test_a_document_past_the_deadline_is_abandoned_and_the_one_queued_behind_it_is_read() -> None:
    """One pathological document must not hold up the others: past the deadline its process
    is killed and replaced, and a document that waited behind it is read by the new one."""
    reader = ProcessReader(1, deadline_s=0.5)
    try:
        reader.read(REQUEST)
        (first,) = reader.pids()
        started = time.monotonic()
        slow_thread, errors = _read_in_background(reader, _slow_request())
        time.sleep(0.1)  # the slow document is in the process first
        document = reader.read(REQUEST)
        slow_thread.join(10)
        took = time.monotonic() - started
        (second,) = reader.pids()
    finally:
        reader.close()
    [error] = errors
    assert "longer than" in str(error)
    assert [entry.title for entry in document.entries] == [item["title"] for item in ITEMS]
    assert second != first and _gone_within([first], 5)
    assert took < 4


def test_reads_under_way_at_close_end_without_new_processes() -> None:
    reader = ProcessReader(1)
    reader.read(REQUEST)
    thread, errors = _read_in_background(reader, _slow_request())
    time.sleep(0.3)
    reader.close()
    thread.join(10)
    assert len(errors) == 1 and reader.pids() == []


def test_a_parser_process_that_has_grown_answers_then_makes_way_for_a_fresh_one() -> None:
    """Past its growth budget (here: any) a parser process answers what it was sent, exits
    and is reaped, and the next document goes to a new process: nothing is lost on the way."""
    reader = ProcessReader(1, max_growth_mb=-1.0)
    seen: list[int] = []
    try:
        for _ in range(3):
            document = reader.read(REQUEST)
            assert [entry.title for entry in document.entries] == [i["title"] for i in ITEMS]
            seen += reader.pids()
        with ThreadPoolExecutor(8) as pool:  # concurrent reads across the hand-overs
            documents = list(pool.map(lambda _: reader.read(REQUEST), range(16), timeout=60))
    finally:
        reader.close()
    assert len(set(seen)) == 3
    assert all(len(document.entries) == len(ITEMS) for document in documents)
    assert _gone_within(seen, 5)  # exited and reaped: no zombie left behind


def _parser_children() -> set[int]:
    """This process's live (not zombie) parser processes, read from /proc."""
    found: set[int] = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes()
        except (OSError, IndexError):
            continue  # it ended while we looked
        if fields[0] != "Z" and int(fields[1]) == os.getpid() and b"serve_stdio" in cmdline:
            found.add(int(stat.parent.name))
    return found


def test_a_retiring_parser_process_has_exited_before_its_successor_starts() -> None:
    """The successor starts only once the grown process has drained: two parsers alive at
    once would be the memory peak that retiring is meant to avoid."""
    reader = ProcessReader(1, max_growth_mb=-1.0)
    most_alive = 0
    every_pid: set[int] = set()
    try:
        with ThreadPoolExecutor(8) as pool:
            reads = [pool.submit(reader.read, REQUEST) for _ in range(24)]
            while not all(read.done() for read in reads):
                alive = _parser_children()
                every_pid |= alive
                most_alive = max(most_alive, len(alive))
            documents = [read.result(timeout=60) for read in reads]
    finally:
        reader.close()
    assert all(len(document.entries) == len(ITEMS) for document in documents)
    assert len(every_pid) >= 3, "the parser process was not replaced as it grew"
    assert most_alive == 1
