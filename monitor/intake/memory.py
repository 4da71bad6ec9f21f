"""The process's memory: glibc's malloc controls and the resident set size.

Used by the daemon (bootstrap tunes malloc at start, the scheduler's trim job hands freed
pages back) and by the parser processes, which import nothing above intake.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os

__all__ = ["release_free_memory", "rss_mb", "tune_malloc"]

# glibc mallopt options (malloc.h). Each thread may otherwise get its own malloc arena; with
# 32 fetch threads that fragmented into steady RSS growth over a long run (bench_soak: +11.4%
# over 30 cycles by default, +6.4% with two arenas). Pinning the mmap and trim thresholds
# cut the first poll's peak RSS by about 20 MB (bench_poll).
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
MALLOC_ARENAS = 2
MMAP_THRESHOLD = 128 * 1024
TRIM_THRESHOLD = 256 * 1024


@functools.cache
def _glibc() -> ctypes.CDLL:
    """The C library, for glibc's malloc controls (OSError where it cannot be loaded).

    Looked up once: find_library runs `ldconfig -p`, and the trim job asks every minute.
    """
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")


def tune_malloc(arenas: int = MALLOC_ARENAS) -> bool:
    """Make glibc's malloc give memory back; False where there is no glibc.

    Arenas are capped (32 fetch threads would otherwise fragment one arena each), and the
    mmap and trim thresholds are pinned: by default glibc raises them after the first big
    allocations are freed, then keeps tens of MB of freed heap after a large poll.
    """
    try:
        libc = _glibc()
        settings = [(M_MMAP_THRESHOLD, MMAP_THRESHOLD), (M_TRIM_THRESHOLD, TRIM_THRESHOLD)]
        if not os.environ.get("MALLOC_ARENA_MAX"):  # else the operator chose already
            settings.append((M_ARENA_MAX, arenas))
        return all([bool(libc.mallopt(option, value)) for option, value in settings])
    except (OSError, AttributeError):
        return False


def release_free_memory() -> bool:
    """Give freed heap pages back to the system (glibc's malloc_trim); False without glibc.

    The trim threshold only returns memory at the top of the heap. Pages freed between live
    chunks stay with the process, and a daemon polling 1,000 feeds crept up by about
    0.45 MB per cycle that way, with Python's and SQLite's own memory flat
    (bench/bench_soak.py). The daemon calls this once a minute; it takes under a millisecond.
    """
    try:
        _glibc().malloc_trim(0)
    except (OSError, AttributeError):
        return False
    return True


def rss_mb() -> float:
    """This process's resident set size in MB (from /proc/self/statm; 0.0 where there is none)."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            pages = int(statm.read().split()[1])
    except (OSError, ValueError, IndexError):
        return 0.0
    return pages * os.sysconf("SC_PAGE_SIZE") / (1024 * 1024)
