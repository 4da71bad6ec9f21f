"""One box at scale: 10,000 feeds at 15-minute intervals on SQLite, one hour of driven clock.

Run: python bench/bench_scale.py   [--feeds 10000] [--intervals 4] [--parse-processes N]

A feed farm in its own process (bench/feedfarm.py) serves the feeds on 250 loopback hosts:
25 items each, ETag and Last-Modified on every answer and a 304 for a matching
`If-None-Match`, 5% of the healthy feeds gaining 1-3 stories at each 15-minute mark, 2%
faulty (500, 404, hang, malformed, oversize, gzip bomb, reset). This process is the monitor:
the real runtime (`build_runtime` with the settings `monitor run` takes from an empty
environment: 48 fetch threads, 2 requests per host, 1 s host spacing, parser processes as
`MONITOR_PARSE_PROCESSES`'s default), a SQLite file, INFO log to a file, one alert route to
the farm's webhook. The clock is a `FrozenClock` the bench drives: it runs the daemon's own
jobs (`Daemon._poll_tick`, `_deliver`, `_digests`, `_reload_if_changed`, `_corroborate`,
`_prune`, `watch_silence`, the trim) at the intervals `Daemon.start` gives them, one 5 s tick
at a time. Every poll goes over the network in real time; only idle time is skipped: a tick
that ended because nothing was in flight moves the clock on at once, and one with feeds in
flight takes at most its busy budget (3.5 s), so the clock then runs at most 1.4x real time.
Fetch limits are bench_soak's (2 s connect and read, 4 s in all) so the few hanging feeds
do not hold the hour up; everything else is as `monitor run` has it.

CPU seconds (utime + stime from /proc, this process and its parser processes; the farm not
counted) are divided by the simulated time they cover: the share of one core the same work
takes in real time. Printed: one line per 15-minute interval, the first poll of every feed
(a one-off) apart from the steady state, the whole hour against the target (<= 25% of one
core), peak and final RSS against 250 MB, requests per feed counted by the farm, and whether
every story served was stored once. Asserts nothing; about 8-10 min for 10,000 feeds on two
cores.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import functools
import logging
import os
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_soak import ROUTE, check_alerts, check_items, write_feeds_yaml  # noqa: E402
from feedfarm import FarmSpec, FeedFarm  # noqa: E402
from sqlalchemy import select  # noqa: E402

from monitor.clock import FrozenClock  # noqa: E402
from monitor.daemon.bootstrap import (  # noqa: E402
    Runtime,
    build_runtime,
    default_parse_processes,
    release_free_memory,
    settings_from_env,
    tune_process_for_service,
)
from monitor.daemon.scheduler import SILENCE_SECONDS, TICK_BUSY_SHARE, Daemon  # noqa: E402
from monitor.store.db import upgrade_in_child  # noqa: E402
from monitor.store.models import FeedRow, FetchLogRow  # noqa: E402

INTERVAL = timedelta(minutes=15)  # the feeds' interval (feeds.yaml's default)
TARGET_CPU_SHARE = 0.25  # of one core, on average over the hour
TARGET_RSS_MB = 250.0
CLK_TCK = os.sysconf("SC_CLK_TCK")
SAMPLE_S = 0.1  # RSS readings between ticks
HWM_STEP_MB = 2.0  # a rise of the main process's VmHWM worth reporting


# -- what this process and its parser processes use ---------------------------------------------


def proc_cpu_s(pid: int | str) -> float:
    """utime + stime of one process, in seconds (children not included)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def proc_status_mb(pid: int | str, key: str) -> float:
    """A size line of /proc/PID/status (VmRSS, VmHWM), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in [
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        ]
    ]


@functools.cache
def _c_libraries() -> tuple[ctypes.CDLL, ctypes.CDLL]:
    """glibc and SQLite, loaded once (find_library runs `ldconfig -p`); OSError without them."""
    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = _MallInfo2
    sqlite = ctypes.CDLL(ctypes.util.find_library("sqlite3") or "libsqlite3.so.0")
    sqlite.sqlite3_memory_used.restype = ctypes.c_int64
    return libc, sqlite


def heap_mb() -> dict[str, float]:
    """What this process's C heap holds, in MB: glibc malloc's bytes in use, free and mapped
    on their own (mallinfo2), and SQLite's share of what is in use; {} without glibc."""
    try:
        libc, sqlite = _c_libraries()
    except (OSError, AttributeError):
        return {}
    info = libc.mallinfo2()
    mb = 1024 * 1024
    return {
        "malloc in use": (info.uordblks + info.hblkhd) / mb,
        "malloc free": info.fordblks / mb,
        "mapped chunks": info.hblkhd / mb,
        "SQLite": sqlite.sqlite3_memory_used() / mb,
    }


@dataclass
class Meter:
    """CPU and RSS of this process and every parser process it has had.

    A parser process that is replaced (it retires once it has grown) keeps its last CPU
    reading, so none is lost. RSS is this process's plus its live parser processes', read
    at every tick and, by a thread of its own, every SAMPLE_S in between (`watch`).
    """

    pids: Callable[[], list[int]]
    parser_cpu: dict[int, float] = field(default_factory=dict)
    parser_hwm: dict[int, float] = field(default_factory=dict)
    peak_rss: float = 0.0  # the largest main + parsers sum seen by any reading
    peak_parts: tuple[float, float] = (0.0, 0.0)  # (main, parsers) at that reading
    peak_heap: dict[str, float] = field(default_factory=dict)  # heap_mb() at that reading
    # When this process's VmHWM rose by more than HWM_STEP_MB between two readings: (seconds
    # since the meter started, the new VmHWM, the rise, its RSS then). The high-water mark
    # is set by moments no reading sees; these say in which phase they fell.
    hwm_rises: list[tuple[float, float, float, float]] = field(default_factory=list)
    _main_hwm: float = 0.0
    _started: float = field(default_factory=time.monotonic)
    _stop: threading.Event = field(default_factory=threading.Event)

    def rss(self) -> tuple[float, float]:
        """(RSS MB of this process, of its live parser processes); keeps the peak."""
        main, parsers = proc_status_mb("self", "VmRSS"), 0.0
        for pid in self.pids():
            try:
                parsers += proc_status_mb(pid, "VmRSS")
                self.parser_hwm[pid] = proc_status_mb(pid, "VmHWM")
            except OSError:
                continue  # it exited between the listing and the read
        if main + parsers > self.peak_rss:
            self.peak_rss, self.peak_parts = main + parsers, (main, parsers)
            self.peak_heap = heap_mb()
        hwm = proc_status_mb("self", "VmHWM")
        if hwm - self._main_hwm > HWM_STEP_MB:
            at = time.monotonic() - self._started
            self.hwm_rises.append((at, hwm, hwm - self._main_hwm, main))
        self._main_hwm = max(self._main_hwm, hwm)
        return main, parsers

    def read(self) -> tuple[float, float, float]:
        """(main CPU s, parser CPU s, RSS MB of main + live parsers)."""
        for pid in self.pids():
            try:
                self.parser_cpu[pid] = proc_cpu_s(pid)
            except OSError:
                continue
        main, parsers = self.rss()
        return proc_cpu_s("self"), sum(self.parser_cpu.values()), main + parsers

    def watch(self) -> None:
        """Read the RSS every SAMPLE_S until `stop` (a thread: peaks between ticks count)."""

        def run() -> None:
            while not self._stop.wait(SAMPLE_S):
                self.rss()

        threading.Thread(target=run, name="rss-meter", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def high_water(self, processes: int) -> float:
        """An upper bound of the peak: this process's VmHWM plus the largest VmHWM of
        `processes` parser processes (replaced ones never ran beside their successors
        for long, so summing every process ever started would count the same MB twice)."""
        parsers = sorted(self.parser_hwm.values(), reverse=True)[:processes]
        return proc_status_mb("self", "VmHWM") + sum(parsers)


@dataclass
class Sample:
    """The state after one tick."""

    sim_s: float  # simulated seconds since the start, at the end of the tick
    wall_s: float
    main_cpu: float
    parser_cpu: float
    rss_mb: float
    polled: int  # feeds stored in this tick (fetched, or failed)
    new_items: int

    @property
    def cpu(self) -> float:
        return self.main_cpu + self.parser_cpu


# -- set-up ----------------------------------------------------------------------------------------


def build(tmp: Path, farm: FeedFarm, clock: FrozenClock, parse_processes: int) -> Runtime:
    """The real runtime as `monitor run` builds it from an empty environment, on a SQLite file."""
    logging.basicConfig(
        filename=tmp / "monitor.log",
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("httpx", "httpcore", "apprise", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    config = tmp / "feeds.yaml"
    write_feeds_yaml(config, farm.urls(), farm.webhook_apprise_url)
    db_url = f"sqlite:///{tmp}/scale.db"
    upgrade_in_child(db_url)  # as `monitor run` does
    env = {"MONITOR_PARSE_PROCESSES": str(parse_processes)}
    settings = settings_from_env(str(config), db_url, env)
    runtime = build_runtime(settings, env={}, clock=clock)
    # What `monitor run` does before its first poll.
    runtime.sync_feeds()
    runtime.load_classifier()
    tune_process_for_service()
    # As bench_soak: a hanging feed ends in 2 s, not 20, so the hour is not spent waiting on
    # the few that hang (their cost in CPU is the same).
    context = runtime.poller.fetch_context
    context.limits = replace(
        context.limits, connect_timeout_s=2.0, read_timeout_s=2.0, total_timeout_s=4.0
    )
    return runtime


def daemon_jobs(daemon: Daemon) -> list[tuple[float, Callable[[], object]]]:
    """The jobs `Daemon.start` registers besides the poll tick, with their intervals."""
    runtime = daemon.runtime
    return [
        (runtime.settings.tick_seconds, daemon._deliver),
        (30, daemon._digests),
        (runtime.settings.reload_seconds, daemon._reload_if_changed),
        (60, daemon._corroborate),
        (3600, daemon._prune),
        (SILENCE_SECONDS, runtime.watch_silence),
        (60, release_free_memory),
    ]


# -- the hour --------------------------------------------------------------------------------------


@dataclass
class Mark:
    """Counters at a 15-minute mark (and at the start and the end)."""

    sim_s: float
    wall_s: float
    main_cpu: float
    parser_cpu: float
    requests: list[int]
    stats: dict[str, int]


def mark(sim_s: float, wall_s: float, meter: Meter, farm: FeedFarm) -> Mark:
    main, parsers, _ = meter.read()
    return Mark(sim_s, wall_s, main, parsers, farm.requests(), farm.stats())


def run_hour(
    runtime: Runtime, daemon: Daemon, farm: FeedFarm, clock: FrozenClock, intervals: int
) -> tuple[list[Sample], list[Mark], Meter]:
    """Drive the clock tick by tick through `intervals` intervals, running the daemon's jobs.

    The poll tick is `Daemon._poll_tick`'s call, made here so that its report can be kept.
    """
    reader = runtime.poller.fetch_context.reader
    meter = Meter(getattr(reader, "pids", list))
    meter.watch()
    jobs = daemon_jobs(daemon)
    next_run = [0.0 for _ in jobs]
    tick = runtime.settings.tick_seconds
    busy_for = TICK_BUSY_SHARE * tick
    start, wall0 = clock.now(), time.perf_counter()
    samples: list[Sample] = []
    marks = [mark(0.0, 0.0, meter, farm)]
    end_s = intervals * INTERVAL.total_seconds()
    sim = 0.0
    while sim < end_s:
        if sim >= len(marks) * INTERVAL.total_seconds():
            farm.advance(len(marks))  # new stories appear at each 15-minute mark
            marks.append(mark(sim, time.perf_counter() - wall0, meter, farm))
        daemon.last_tick_at = clock.now()
        report = runtime.poller.tick(busy_for=busy_for)
        for index, (every, job) in enumerate(jobs):
            if sim >= next_run[index]:
                next_run[index] = sim + every
                job()
        sim += tick
        clock.set(start + timedelta(seconds=sim))
        main, parsers, rss = meter.read()
        wall = time.perf_counter() - wall0
        samples.append(
            Sample(
                sim, wall, main, parsers, rss, report.polled + report.held_back, report.new_items
            )
        )
    marks.append(mark(sim, time.perf_counter() - wall0, meter, farm))
    meter.stop()  # the checks after the hour are the bench's, not the monitor's
    return samples, marks, meter


# -- figures ---------------------------------------------------------------------------------------


def share(cpu_s: float, sim_s: float) -> str:
    return f"{cpu_s / sim_s * 100:.1f}%" if sim_s > 0 else "-"


def print_intervals(samples: Sequence[Sample], marks: Sequence[Mark]) -> None:
    """One line per 15-minute interval."""
    print(f"\n{'interval':>10}{'wall s':>8}{'polled':>8}{'req':>8}{'200':>7}{'304':>7}"
          f"{'new':>7}{'main CPU':>10}{'parser':>8}{'share':>8}{'RSS max':>9}")  # fmt: skip
    for before, after in zip(marks, marks[1:], strict=False):
        inside = [s for s in samples if before.sim_s < s.sim_s <= after.sim_s]
        cpu = after.main_cpu - before.main_cpu + after.parser_cpu - before.parser_cpu
        label = f"{before.sim_s / 60:.0f}-{after.sim_s / 60:.0f} min"
        print(
            f"{label:>10}{after.wall_s - before.wall_s:>8.1f}{sum(s.polled for s in inside):>8}"
            f"{sum(after.requests) - sum(before.requests):>8}"
            f"{after.stats.get('status:200', 0) - before.stats.get('status:200', 0):>7}"
            f"{after.stats.get('status:304', 0) - before.stats.get('status:304', 0):>7}"
            f"{sum(s.new_items for s in inside):>7}"
            f"{after.main_cpu - before.main_cpu:>10.1f}{after.parser_cpu - before.parser_cpu:>8.1f}"
            f"{share(cpu, after.sim_s - before.sim_s):>8}"
            f"{max((s.rss_mb for s in inside), default=0):>9.1f}"
        )


def print_summary(
    samples: Sequence[Sample],
    marks: Sequence[Mark],
    meter: Meter,
    feeds: int,
    faulty: set[int],
    processes: int,
) -> None:
    """The first poll, the steady state, the hour, memory and requests per feed."""
    first, last = marks[0], marks[-1]
    polled = 0
    first_end = samples[-1]
    for sample in samples:
        polled += sample.polled
        if polled >= feeds:
            first_end = sample
            break
    cpu0 = first.main_cpu + first.parser_cpu
    first_cpu = first_end.cpu - cpu0
    print(
        f"\nfirst poll of all {feeds} feeds: {first_end.wall_s:.1f} s wall "
        f"({first_end.sim_s:.0f} s simulated), CPU {first_cpu:.1f} s "
        f"(main {first_end.main_cpu - first.main_cpu:.1f}, parsers "
        f"{first_end.parser_cpu - first.parser_cpu:.1f}) = {first_cpu / first_end.wall_s:.2f} "
        f"cores while it ran; {first_cpu * 1000 / feeds:.1f} CPU-ms per feed"
    )
    steady_s = last.sim_s - first_end.sim_s
    steady_cpu = last.main_cpu + last.parser_cpu - first_end.cpu
    steady_polls = sum(s.polled for s in samples if s.sim_s > first_end.sim_s)
    print(
        f"steady state ({first_end.sim_s:.0f}-{last.sim_s:.0f} s simulated): CPU {steady_cpu:.1f} s"
        f" for {steady_polls} polls ({steady_cpu * 1000 / max(steady_polls, 1):.2f} CPU-ms per "
        f"poll) = {share(steady_cpu, steady_s)} of one core"
    )
    hour_cpu = last.main_cpu + last.parser_cpu - cpu0
    print(
        f"the whole {last.sim_s / 60:.0f} min: CPU {hour_cpu:.1f} s (main "
        f"{last.main_cpu - first.main_cpu:.1f}, parsers {last.parser_cpu - first.parser_cpu:.1f})"
        f" = {share(hour_cpu, last.sim_s)} of one core (target <= {TARGET_CPU_SHARE:.0%}: "
        f"{'met' if hour_cpu / last.sim_s <= TARGET_CPU_SHARE else 'NOT met'}); "
        f"{last.wall_s:.0f} s of wall time"
    )
    peak = max(s.rss_mb for s in samples)
    hwm = meter.high_water(processes)
    final = samples[-1].rss_mb
    main, parsers = meter.peak_parts
    heap = ", ".join(f"{name} {mb:.1f}" for name, mb in meter.peak_heap.items())
    print(
        f"RSS (monitor + its live parser processes): peak {peak:.1f} MB per tick, "
        f"{meter.peak_rss:.1f} MB read every {SAMPLE_S:g} s (main {main:.1f} [{heap}] + "
        f"parsers {parsers:.1f}); high-water bound {hwm:.1f} MB (main VmHWM + the largest "
        f"VmHWM of {processes} of the {len(meter.parser_hwm)} parser processes it had); "
        f"final {final:.1f} MB (target <= {TARGET_RSS_MB:.0f} MB: "
        f"{'met' if max(meter.peak_rss, hwm) <= TARGET_RSS_MB else 'NOT met'})"
    )
    top = max((rise[1] for rise in meter.hwm_rises), default=0.0)
    late = [rise for rise in meter.hwm_rises if rise[1] >= top - 10]  # what set the mark
    print(
        "main VmHWM rises within 10 MB of its mark (s since start: VmHWM MB, +rise, RSS then): "
        + (
            ", ".join(
                f"{at:.0f}: {hwm:.1f} (+{up:.1f}, rss {rss:.1f})" for at, hwm, up, rss in late
            )
            or "none"
        )
    )
    per_feed = last.requests
    healthy = [n for i, n in enumerate(per_feed) if i not in faulty]
    sick = [n for i, n in enumerate(per_feed) if i in faulty]
    intervals = last.sim_s / INTERVAL.total_seconds()
    print(
        f"requests per feed over {intervals:.0f} intervals: healthy mean "
        f"{statistics.mean(healthy):.2f} ({statistics.mean(healthy) / intervals:.2f} per "
        f"interval), distribution {dict(sorted(Counter(healthy).items()))}; faulty mean "
        f"{statistics.mean(sick) if sick else 0:.2f} (backoff), "
        f"distribution {dict(sorted(Counter(sick).items()))}"
    )


def poll_gaps(runtime: Runtime, faulty: set[int]) -> dict[str, float]:
    """Simulated time between a healthy feed's consecutive polls, from the fetch log."""
    with runtime.sessions() as session:
        names = {row.id: row.name for row in session.execute(select(FeedRow.id, FeedRow.name))}
        rows = session.execute(
            select(FetchLogRow.feed_id, FetchLogRow.started_at).order_by(FetchLogRow.id)
        ).all()
    times: dict[int, list[datetime]] = {}
    for feed_id, started_at in rows:
        if int(names[feed_id][5:]) not in faulty:
            times.setdefault(feed_id, []).append(started_at)
    gaps = [
        (b - a).total_seconds() / 60
        for polls in times.values()
        for a, b in zip(polls, polls[1:], strict=False)
    ]
    if not gaps:
        return {}
    return {
        "gaps": len(gaps),
        "min": min(gaps),
        "mean": statistics.mean(gaps),
        "max": max(gaps),
        "under 13.5 min": sum(1 for g in gaps if g < 13.5),
    }


def main() -> None:
    """Run the hour and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=int, default=10_000)
    parser.add_argument("--intervals", type=int, default=4)
    parser.add_argument("--parse-processes", type=int, default=default_parse_processes())
    args = parser.parse_args()
    started = time.perf_counter()
    spec = FarmSpec(feeds=args.feeds, faulty_share=0.02, grow_share=0.05)
    faults = Counter(spec.faults().values())
    print(f"{spec.feeds} feeds on {min(spec.hosts, spec.feeds)} hosts, {sum(faults.values())} "
          "faulty (" + ", ".join(f"{k} {n}" for k, n in sorted(faults.items())) + "); "
          f"{args.parse_processes} parser processes; {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.2f}")  # fmt: skip
    with FeedFarm(spec) as farm, tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp_name:
        print(f"farm ready in {time.perf_counter() - started:.0f} s", flush=True)
        tmp = Path(tmp_name)
        clock = FrozenClock(datetime.now(UTC))
        runtime = build(tmp, farm, clock, args.parse_processes)
        daemon = Daemon(runtime)
        samples, marks, meter = run_hour(runtime, daemon, farm, clock, args.intervals)
        print_intervals(samples, marks)
        print_summary(samples, marks, meter, spec.feeds, set(spec.faults()), args.parse_processes)
        gaps = poll_gaps(runtime, set(spec.faults()))
        items = check_items(runtime, farm)
        alerts = check_alerts(runtime, farm.posts())
        log = (tmp / "monitor.log").read_text(encoding="utf-8", errors="replace").splitlines()
        db_mb = (tmp / "scale.db").stat().st_size / 1e6
        runtime.close()
    for title, figures in (("items (healthy feeds)", items), (f"alerts (route {ROUTE})", alerts)):
        print(f"\n{title}")
        for name, value in figures.items():
            print(f"  {name:<40}{value:>8}")
    if gaps:
        print(
            f"\nminutes between a healthy feed's polls (simulated, from the fetch log): "
            f"{gaps['gaps']:.0f} gaps, min {gaps['min']:.1f}, mean {gaps['mean']:.1f}, max "
            f"{gaps['max']:.1f}; {gaps['under 13.5 min']:.0f} under 13.5 min (interval 15 ±10%)"
        )
    bad = [line for line in log if " ERROR " in line or " CRITICAL " in line]
    print(f"\nlog: {len(log)} lines, {len(bad)} ERROR; database {db_mb:.1f} MB; "
          f"load average at the end {os.getloadavg()[0]:.2f}")  # fmt: skip
    for line in bad[:5]:
        print("  " + line[:200])
    print(f"total bench time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
