"""Benchmark poll cycles: 1,000 local feeds through monitor versus a naive feedparser loop.

Run: python bench/bench_poll.py   [--workers 32,48] [--processes 0,1,2] [--feeds 1000]
                                 [--naive-feeds 200] [--mix ordinary,heavy-one,heavy-none]
                                 [--timeout 240] [--profile]

A feed farm in its own process (bench/feedfarm.py) serves 1,000 RSS feeds of 25 items over
250 loopback hosts, each answer delayed 50 ms, with ETag/304. For each worker count a fresh
child process builds the real runtime (packaged classifier, SQLite file database, INFO log to
a file) and times cycle 1 (every feed new: fetch, parse, classify, store 25,000 items) and
cycle 2 (every feed answers 304). The naive baseline, `feedparser.parse(httpx.get(url).content)`
in a sequential loop with no storage or classification, runs in its own child on the first
`--naive-feeds` feeds and is extrapolated linearly to all feeds (its cost is per feed).
Peak RSS is each child's VmHWM, so the farm and this parent never count. Prints figures and
ratios, and whether the targets are met; asserts nothing about time. Finishes in ~2-4 min.

`--mix` repeats the monitor runs on other item mixes (MIXES), each from its own farm:
"ordinary" (3% of the items flagged, 12 states), "heavy-one" (two thirds flagged, 80% of those
naming Pakistan) and "heavy-none" (two thirds flagged, none naming a state). For each it
reports cycle 1 and the events and alerts it made, and each heavy mix's cycle 1 against the
ordinary one (target: at most HEAVY_RATIO_TARGET times). A child that does not finish within
`--timeout` seconds is killed and reported with how far it got (read from its database).
`--profile` samples the writer's (main thread's) stack during cycle 1 and prints where it was.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import resource
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from feedfarm import FarmSpec, FeedFarm, feed_url  # noqa: E402

TARGET_CYCLE1_S = 10.0
TARGET_CYCLE2_S = 2.0
TARGET_RSS_MB = 200.0
CHILD_TIMEOUT_S = 240.0
HEAVY_RATIO_TARGET = 1.5  # a heavy mix's cycle 1 against the ordinary mix's (issue #14)
# Item mixes: FarmSpec fields on top of the defaults. Heavy: two thirds of the items flagged.
MIXES: dict[str, dict[str, Any]] = {
    "ordinary": {},
    "heavy-one": {"measure_share": 0.67, "measure_states": "one"},
    "heavy-none": {"measure_share": 0.67, "measure_states": "none"},
}
PROGRESS = "PROGRESS "  # prefix of the child's progress lines on stderr
PROFILE_INTERVAL_S = 0.01
PROFILE_FILE = "profile.json"


@dataclass
class Cycle:
    """One timed cycle: wall and CPU seconds, what it did, RSS right after."""

    wall_s: float
    cpu_s: float
    main_cpu_s: float  # the calling thread: claims, dedup, classification, every write
    polled: int
    failed: int
    new_items: int
    flagged: int
    rss_mb: float
    alerts_queued: int = 0


@dataclass
class RunResult:
    """What one child measured."""

    label: str
    feeds: int
    startup_s: float
    cycles: list[Cycle]
    items_stored: int
    peak_rss_mb: float
    base_rss_mb: float
    parser_rss_mb: float = 0.0  # child processes' peak RSS, summed (not in peak_rss_mb)
    parser_cpu_s: float = 0.0  # parser processes' CPU over both cycles
    scale: float = 1.0  # multiply times by this to get the full feed count (naive sample)
    mix: str = "ordinary"
    events: int = 0  # rows in the events table after cycle 1
    alerts: int = 0  # rows in the alerts table (the outbox) after cycle 1
    timed_out: str = ""  # how far a child killed at its timeout got; empty when it finished
    profile: dict[str, Any] = field(default_factory=dict)  # writer samples (--profile)


# -- measurements inside a child process ------------------------------------------------------


def proc_status_mb(field: str, pid: int | str = "self") -> float:
    """A memory field of /proc/PID/status (VmRSS, VmHWM) in MB; 0 when the process is gone."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return 0.0
    for line in lines:
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds() -> float:
    """User + system CPU time of this process so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main_thread_cpu_seconds() -> float:
    """User + system CPU time of the main thread (the poller's writer) from /proc."""
    fields = Path(f"/proc/self/task/{os.getpid()}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed(step: Callable[[], dict[str, int]]) -> Cycle:
    """Run one cycle and measure it."""
    wall, cpu, main_cpu = time.perf_counter(), cpu_seconds(), main_thread_cpu_seconds()
    counts = step()
    return Cycle(
        wall_s=time.perf_counter() - wall,
        cpu_s=cpu_seconds() - cpu,
        main_cpu_s=main_thread_cpu_seconds() - main_cpu,
        polled=counts.get("polled", 0),
        failed=counts.get("failed", 0),
        new_items=counts.get("new_items", 0),
        flagged=counts.get("flagged", 0),
        rss_mb=proc_status_mb("VmRSS"),
        alerts_queued=counts.get("alerts_queued", 0),
    )


def progress(phase: str, **done: Any) -> None:
    """Tell the parent where this child is, and what it has measured so far (the parent
    reads these lines if it has to kill the child at its timeout)."""
    mark = {"phase": phase, "t": time.time(), "cpu": cpu_seconds()}
    mark["main_cpu"] = main_thread_cpu_seconds()
    print(PROGRESS + json.dumps({**mark, **done}), file=sys.stderr, flush=True)


class WriterSampler:
    """Samples the main thread's (the writer's) stack every PROFILE_INTERVAL_S, standard
    library only; writes its counts to `path` every second, so a child killed at its timeout
    still leaves them. Counts per function ("file:line name"): self (on top of the stack) and
    inclusive (anywhere in it)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.samples = 0
        self.own: Counter[str] = Counter()
        self.inclusive: Counter[str] = Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="writer-sampler", daemon=True)
        self._main = threading.main_thread().ident

    def __enter__(self) -> WriterSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._dump()

    def _run(self) -> None:
        last_dump = time.monotonic()
        while not self._stop.wait(PROFILE_INTERVAL_S):
            frame = sys._current_frames().get(self._main or 0)
            if frame is None:
                continue
            self.samples += 1
            seen: set[str] = set()
            top = True
            while frame is not None:
                code = frame.f_code
                name = f"{_short_path(code.co_filename)}:{code.co_firstlineno} {code.co_name}"
                if top:
                    self.own[name] += 1
                    top = False
                if name not in seen:
                    seen.add(name)
                    self.inclusive[name] += 1
                frame = frame.f_back
            if time.monotonic() - last_dump >= 1.0:
                self._dump()
                last_dump = time.monotonic()

    def _dump(self) -> None:
        data = {
            "samples": self.samples,
            "interval_s": PROFILE_INTERVAL_S,
            "own": dict(self.own.most_common(40)),
            "inclusive": dict(self.inclusive.most_common(60)),
        }
        partial = self.path.with_suffix(".tmp")
        partial.write_text(json.dumps(data))
        partial.replace(self.path)


def _short_path(filename: str) -> str:
    """A code object's file, from the package or site-packages directory on."""
    parts = Path(filename).parts
    for anchor in ("monitor", "site-packages", "bench"):
        if anchor in parts:
            return "/".join(parts[parts.index(anchor) + (anchor == "site-packages") :])
    return Path(filename).name


def write_feeds_yaml(path: Path, urls: Sequence[str]) -> None:
    """A feeds.yaml with one feed per URL and no alert route (alerts go to the console)."""
    lines = ["feeds:"]
    for index, url in enumerate(urls):
        lines += [f"  - name: farm-{index:04d}", f"    url: {url}", "    language: en"]
    lines.append("alerts: []")
    # The measurement services are outside hosts: a benchmark contacts none.
    lines += ["corroboration:", "  enabled: false"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def log_to_file(path: Path) -> None:
    """Log like the daemon (INFO, one line per poll) but into a file, not the terminal."""
    logging.basicConfig(
        filename=path, level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    for noisy in ("httpx", "httpcore", "apprise", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def children(pid: int) -> list[int]:
    """Direct children of a process, from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


def child_processes_usage() -> tuple[float, float]:
    """Peak RSS (MB, summed) and CPU seconds of this process's children: the parser
    processes, and anything else the runtime started (all are part of its footprint)."""
    rss = cpu = 0.0
    for pid in children(os.getpid()):
        try:
            status = Path(f"/proc/{pid}/status").read_text().splitlines()
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        hwm = next((line.split()[1] for line in status if line.startswith("VmHWM:")), "0")
        rss += int(hwm) / 1024
        cpu += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return rss, cpu


def run_monitor(
    urls: Sequence[str], workers: int, processes: int, workdir: str, profile: bool = False
) -> RunResult:
    """Build the real runtime on a fresh SQLite file in `workdir` and time two full cycles."""
    from sqlalchemy import func, select

    from monitor.daemon.bootstrap import Settings, build_runtime, tune_process_for_service
    from monitor.store.db import upgrade_in_child
    from monitor.store.models import AlertRow, EventRow, ItemRow

    # The parent owns `workdir`: it reads the database of a child it had to kill.
    log_to_file(Path(workdir) / "monitor.log")
    config = Path(workdir) / "feeds.yaml"
    write_feeds_yaml(config, urls)
    db_url = f"sqlite:///{workdir}/bench.db"
    upgrade_in_child(db_url)  # as `monitor run` does
    base_rss = proc_status_mb("VmRSS")
    start = time.perf_counter()
    settings = Settings(
        config,
        db_url,
        workers=workers,
        per_host=4,
        host_spacing_s=0.0,
        parse_processes=processes,
    )
    runtime = build_runtime(settings, env={})
    # What `monitor run` does before its first poll.
    runtime.sync_feeds()
    runtime.load_classifier()
    tune_process_for_service()
    poller = runtime.poller
    startup = time.perf_counter() - start

    def cycle() -> dict[str, int]:
        return asdict(poller.run_once())

    progress("cycle1")
    sampler = WriterSampler(Path(workdir) / PROFILE_FILE) if profile else None
    with sampler or contextlib.nullcontext():
        cycles = [timed(cycle)]
    with runtime.sessions() as session:
        events = int(session.scalar(select(func.count(EventRow.id))) or 0)
        alerts = int(session.scalar(select(func.count(AlertRow.id))) or 0)
    progress("cycle2", cycle1=asdict(cycles[0]), events=events, alerts=alerts)
    cycles.append(timed(cycle))
    with runtime.sessions() as session:
        items = int(session.scalar(select(func.count(ItemRow.id))) or 0)
    parser_rss, parser_cpu = child_processes_usage()
    runtime.close()
    return RunResult(
        label=run_label(workers, processes),
        parser_rss_mb=parser_rss,
        parser_cpu_s=parser_cpu,
        feeds=len(urls),
        startup_s=startup,
        cycles=cycles,
        items_stored=items,
        peak_rss_mb=proc_status_mb("VmHWM"),
        base_rss_mb=base_rss,
        events=events,
        alerts=alerts,
        profile=json.loads((Path(workdir) / PROFILE_FILE).read_text()) if profile else {},
    )


def run_naive(urls: Sequence[str], sample: int, total: int) -> RunResult:
    """The baseline: sequential GET + feedparser, twice (no validators: it downloads again)."""
    import feedparser
    import httpx

    base_rss = proc_status_mb("VmRSS")

    def cycle() -> dict[str, int]:
        entries = failed = 0
        for url in urls[:sample]:
            try:
                entries += len(feedparser.parse(httpx.get(url).content).entries)
            except httpx.HTTPError:
                failed += 1
        return {"polled": sample, "failed": failed, "new_items": entries}

    cycles = [timed(cycle), timed(cycle)]
    return RunResult(
        label=f"naive loop ({sample} feeds ×{total / sample:g})",
        feeds=sample,
        startup_s=0.0,
        cycles=cycles,
        items_stored=0,
        peak_rss_mb=proc_status_mb("VmHWM"),
        base_rss_mb=base_rss,
        scale=total / sample,
    )


def child_main(args: argparse.Namespace) -> None:
    """Entry point of a measuring child: run one side, print its result as JSON."""
    spec = FarmSpec(**json.loads(args.spec))
    urls = [feed_url(spec, args.port, index) for index in range(spec.feeds)]
    if args.child == "monitor":
        result = run_monitor(
            urls, int(args.workers), int(args.processes), args.workdir, args.profile
        )
        result.mix = args.mix
    else:
        result = run_naive(urls, min(args.naive_feeds, len(urls)), len(urls))
    print(json.dumps(asdict(result)))


# -- the parent: start the farm, run the children, print the table ----------------------------


def run_child(
    farm: FeedFarm,
    child: str,
    *extra: str,
    timeout: float = CHILD_TIMEOUT_S,
    mix: str = "ordinary",
    label: str = "",
) -> RunResult:
    """Run one measuring child process against the farm and read its result; a monitor
    child still running after `timeout` seconds is killed and reported as far as it got."""
    with tempfile.TemporaryDirectory(prefix="bench-poll-") as workdir:
        command = [
            sys.executable, __file__, "--child", child, "--port", str(farm.port),
            "--spec", json.dumps(asdict(farm.spec)), "--workdir", workdir,
            "--mix", mix, *extra,
        ]  # fmt: skip
        # Its own session: at a timeout the child and its parser processes go as one group.
        proc = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            start_new_session=True,
        )  # fmt: skip
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            usage = group_usage(proc.pid)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            stdout, stderr = proc.communicate()
            return timed_out_result(workdir, stderr, usage, timeout, mix, label, farm.spec.feeds)
        finally:
            if proc.poll() is None:  # this parent is being interrupted: take the child along
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        if proc.returncode != 0:
            raise RuntimeError(f"{child} child failed:\n{stderr[-3000:]}")
    data: dict[str, Any] = json.loads(stdout.strip().splitlines()[-1])
    data["cycles"] = [Cycle(**c) for c in data["cycles"]]
    return RunResult(**data)


def group_usage(pid: int) -> dict[str, float]:
    """CPU seconds, main-thread CPU seconds and peak RSS (MB) of a child and its children,
    read from /proc while they still run."""
    tick = os.sysconf("SC_CLK_TCK")

    def cpu(stat: Path) -> float:
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / tick

    kids = children(pid)
    return {
        "cpu_s": cpu(Path(f"/proc/{pid}/stat")),
        "main_cpu_s": cpu(Path(f"/proc/{pid}/task/{pid}/stat")),
        "peak_rss_mb": proc_status_mb("VmHWM", pid),
        "rss_mb": proc_status_mb("VmRSS", pid),
        "parser_rss_mb": sum(proc_status_mb("VmHWM", kid) for kid in kids),
        "parser_cpu_s": sum(cpu(Path(f"/proc/{kid}/stat")) for kid in kids),
        "t": time.time(),
    }


def progress_marks(stderr: str) -> dict[str, dict[str, Any]]:
    """The child's progress lines, by phase."""
    marks = {}
    for line in stderr.splitlines():
        if line.startswith(PROGRESS):
            mark = json.loads(line[len(PROGRESS) :])
            marks[mark.pop("phase")] = mark
    return marks


def database_counts(path: Path) -> dict[str, int]:
    """What a killed child had committed: feeds polled, items, flagged items, events, alerts."""
    queries = {
        "polled": "SELECT count(*) FROM fetch_log",
        "new_items": "SELECT count(*) FROM items",
        "flagged": "SELECT count(*) FROM assessments WHERE relevant",
        "events": "SELECT count(*) FROM events",
        "alerts": "SELECT count(*) FROM alerts",
    }
    if not path.exists():
        return dict.fromkeys(queries, 0)
    with contextlib.closing(sqlite3.connect(path, timeout=30)) as db:
        return {name: int(db.execute(sql).fetchone()[0]) for name, sql in queries.items()}


def timed_out_result(
    workdir: str,
    stderr: str,
    usage: dict[str, float],
    timeout: float,
    mix: str,
    label: str,
    feeds: int,
) -> RunResult:
    """A RunResult for a child killed at its timeout: cycle 1 as far as it got, from its
    progress lines, its database and /proc."""
    marks = progress_marks(stderr)
    counts = database_counts(Path(workdir) / "bench.db")
    profile_path = Path(workdir) / PROFILE_FILE
    profile = json.loads(profile_path.read_text()) if profile_path.exists() else {}
    start = marks.get("cycle1")
    if "cycle2" in marks:  # cycle 1 finished; the child measured it
        second = marks["cycle2"]
        note = f"killed {usage['t'] - second['t']:.0f} s into cycle 2 (cycle 1 finished)"
        cycle = Cycle(**second["cycle1"])
        counts["events"], counts["alerts"] = second["events"], second["alerts"]
    elif start is None:
        note = f"killed after {timeout:g} s, before cycle 1"
        cycle = Cycle(0.0, 0.0, 0.0, 0, 0, 0, 0, usage["rss_mb"])
    else:
        wall = usage["t"] - start["t"]
        note = (
            f"killed {wall:.0f} s into cycle 1: {counts['polled']} of {feeds} feeds stored, "
            f"{counts['new_items']} items"
        )
        cycle = Cycle(
            wall_s=wall,
            cpu_s=usage["cpu_s"] - start["cpu"],
            main_cpu_s=usage["main_cpu_s"] - start["main_cpu"],
            polled=counts["polled"],
            failed=0,
            new_items=counts["new_items"],
            flagged=counts["flagged"],
            rss_mb=usage["rss_mb"],
            alerts_queued=counts["alerts"],
        )
    return RunResult(
        label=label,
        feeds=feeds,
        startup_s=0.0,
        cycles=[cycle],
        items_stored=counts["new_items"],
        peak_rss_mb=usage["peak_rss_mb"],
        base_rss_mb=0.0,
        parser_rss_mb=usage["parser_rss_mb"],
        parser_cpu_s=usage["parser_cpu_s"],
        mix=mix,
        events=counts["events"],
        alerts=counts["alerts"],
        timed_out=note,
        profile=profile,
    )


def _ok(value: float, target: float) -> str:
    return "ok" if value <= target else "NO"


def default_label() -> str:
    """The label of the run that uses the daemon's default threads and parser processes."""
    from monitor.daemon.bootstrap import DEFAULT_WORKERS, default_parse_processes

    return run_label(DEFAULT_WORKERS, default_parse_processes())


def run_label(workers: int, processes: int) -> str:
    return f"monitor, {workers} thr, {processes} proc"


def print_report(
    runs: Sequence[RunResult],
    naive: RunResult | None,
    total_feeds: int,
    workers: Sequence[int],
) -> None:
    """The comparison table, ratios against the naive loop (if run), and the target check."""
    print(f"\n{total_feeds} feeds × 25 items, 50 ms latency per response, SQLite file database")
    header = (
        f"{'run':<28}{'cycle1 s':>9}{'cpu1 s':>8}{'main1 s':>8}{'cycle2 s':>9}{'cpu2 s':>8}"
        f"{'items/s':>9}{'peak MB':>9}{'+parsers':>9}{'items':>8}{'flagged':>8}{'failed':>7}"
    )
    print(header)
    print("-" * len(header))
    for run in [*runs, *([naive] if naive else [])]:
        c1, c2 = run.cycles
        s = run.scale
        items = run.items_stored if run is not naive else round(c1.new_items * s)
        print(
            f"{run.label:<28}{c1.wall_s * s:>9.2f}{c1.cpu_s * s:>8.2f}{c1.main_cpu_s * s:>8.2f}"
            f"{c2.wall_s * s:>9.2f}{c2.cpu_s * s:>8.2f}{items / (c1.wall_s * s):>9.0f}"
            f"{run.peak_rss_mb:>9.1f}{run.parser_rss_mb:>9.1f}{items:>8}{c1.flagged:>8}"
            f"{c1.failed + c2.failed:>7}"
        )
    print("(cpu = CPU time of the monitor process; main = CPU of its calling thread, which")
    print(" dedups, classifies (when no parser processes) and writes every feed's result;")
    print(" +parsers = peak RSS of its child processes (the parsers), summed, on top of peak MB)")
    for run in runs:
        if run.parser_cpu_s:
            print(f"  {run.label}: parser processes used {run.parser_cpu_s:.1f} CPU s")
    if naive:
        print_naive_ratios(runs, naive)
    print(f"monitor startup (config, classifier, engine): {runs[0].startup_s:.2f} s, "
          f"RSS before startup {runs[0].base_rss_mb:.0f} MB")  # fmt: skip
    print_target_check(runs, total_feeds, workers)


def print_naive_ratios(runs: Sequence[RunResult], naive: RunResult) -> None:
    """How the naive loop was measured, and each run's speed and size against it."""
    nc1 = naive.cycles[0].wall_s * naive.scale
    nc2 = naive.cycles[1].wall_s * naive.scale
    print(
        f"(naive: measured on {naive.feeds} feeds in {naive.cycles[0].wall_s:.2f} s + "
        f"{naive.cycles[1].wall_s:.2f} s, times scaled ×{naive.scale:g}; its items column is "
        "entries parsed, nothing is stored or classified)"
    )
    print("\nratios (naive ÷ monitor; > 1 means monitor is faster / smaller), CPU/wall per cycle")
    for run in runs:
        c1, c2 = run.cycles
        print(
            f"  {run.label:<26} cycle1 {nc1 / c1.wall_s:5.1f}×   cycle2 {nc2 / c2.wall_s:5.1f}×"
            f"   peak RSS {naive.peak_rss_mb / run.peak_rss_mb:4.2f}×"
            f"   CPU/wall {c1.cpu_s / c1.wall_s:4.2f} / {c2.cpu_s / c2.wall_s:4.2f}"
        )


def print_target_check(runs: Sequence[RunResult], total_feeds: int, workers: Sequence[int]) -> None:
    """Each run against the issue's targets, and the latency floor the threads allow."""
    print(
        f"\ntargets per run: cycle 1 ≤ {TARGET_CYCLE1_S:g} s, cycle 2 ≤ {TARGET_CYCLE2_S:g} s, "
        f"peak RSS (monitor + parser processes) ≤ {TARGET_RSS_MB:g} MB"
    )
    for run in runs:
        c1, c2 = run.cycles
        rss = run.peak_rss_mb + run.parser_rss_mb
        met = c1.wall_s <= TARGET_CYCLE1_S and c2.wall_s <= TARGET_CYCLE2_S and rss <= TARGET_RSS_MB
        marker = "  <- the daemon's defaults" if run.label == default_label() else ""
        print(
            f"  {run.label:<26} cycle1 {c1.wall_s:5.2f} {_ok(c1.wall_s, TARGET_CYCLE1_S)}"
            f"  cycle2 {c2.wall_s:4.2f} {_ok(c2.wall_s, TARGET_CYCLE2_S)}"
            f"  RSS {rss:5.1f} {_ok(rss, TARGET_RSS_MB)}"
            f"   all met: {'yes' if met else 'NO'}{marker}"
        )
    floor = total_feeds * 0.05
    print(f"\nlatency floor: {floor:.0f} s of waiting ÷ workers = "
          + ", ".join(f"{floor / w:.1f} s @{w}" for w in workers))  # fmt: skip


def print_mix_report(by_mix: dict[str, list[RunResult]], timeout: float) -> None:
    """Cycle 1 per item mix, and each heavy mix's cycle 1 against the ordinary mix's."""
    print("\nitem mixes, cycle 1 (a fresh database each; events and alerts made by cycle 1)")
    header = (
        f"{'mix':<12}{'run':<28}{'cycle1 s':>9}{'cpu1 s':>8}{'main1 s':>8}{'items':>8}"
        f"{'flagged':>8}{'events':>8}{'alerts':>8}{'peak MB':>9}{'+parsers':>9}"
    )
    print(header)
    print("-" * len(header))
    for mix, runs in by_mix.items():
        for run in runs:
            c1 = run.cycles[0]
            wall = f"{'>' if run.timed_out else ''}{c1.wall_s:.2f}"
            print(
                f"{mix:<12}{run.label:<28}{wall:>9}{c1.cpu_s:>8.2f}{c1.main_cpu_s:>8.2f}"
                f"{c1.new_items:>8}{c1.flagged:>8}{run.events:>8}{c1.alerts_queued:>8}"
                f"{run.peak_rss_mb:>9.1f}{run.parser_rss_mb:>9.1f}"
            )
            if run.timed_out:
                print(f"{'':<12}  did not finish within {timeout:g} s: {run.timed_out}")
    ordinary = {run.label: run for run in by_mix.get("ordinary", []) if not run.timed_out}
    heavy = [(mix, run) for mix, runs in by_mix.items() if mix != "ordinary" for run in runs]
    if not ordinary or not heavy:
        return
    print(f"\nheavy ÷ ordinary, cycle 1 wall time (target ≤ {HEAVY_RATIO_TARGET:g}×)")
    for mix, run in heavy:
        base = ordinary.get(run.label)
        if base is None:
            continue
        ratio = run.cycles[0].wall_s / base.cycles[0].wall_s
        if run.timed_out:
            verdict = f"> {ratio:.1f}×  NO (did not finish)"
        else:
            met = ratio <= HEAVY_RATIO_TARGET
            verdict = f"{ratio:.2f}×  {'met' if met else 'NO'}"
        print(f"  {mix:<12}{run.label:<28}{verdict}")


def print_profile(run: RunResult, top: int = 20) -> None:
    """Where the writer (main thread) was in the sampled part of cycle 1."""
    samples = int(run.profile.get("samples", 0))
    if not samples:
        return
    interval = float(run.profile.get("interval_s", PROFILE_INTERVAL_S))
    print(
        f"\nwriter profile, {run.mix} / {run.label}: {samples} samples of the main thread "
        f"every {interval * 1000:g} ms (share of samples; inclusive = anywhere on the stack)"
    )
    inclusive: dict[str, int] = run.profile.get("inclusive", {})
    own: dict[str, int] = run.profile.get("own", {})
    ours = [(name, n) for name, n in inclusive.items() if name.startswith("monitor/")]
    print("  inclusive, monitor's functions:")
    for name, count in ours[:top]:
        print(f"    {count / samples:6.1%}  {name}")
    print("  self (top of the stack):")
    for name, count in list(own.items())[:10]:
        print(f"    {count / samples:6.1%}  {name}")


def main() -> None:
    """Parse options; as the parent, run everything and print the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", default="32,48", help="comma-separated worker counts")
    parser.add_argument(
        "--processes",
        default="0,1,2",
        help="comma-separated parser-process counts (0: parse in the fetch threads)",
    )
    parser.add_argument("--feeds", type=int, default=1000)
    parser.add_argument(
        "--naive-feeds", type=int, default=200, help="naive sample size (0: skip the naive loop)"
    )
    parser.add_argument(
        "--mix",
        default="ordinary",
        help="comma-separated item mixes, each from its own farm: " + ", ".join(MIXES),
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=CHILD_TIMEOUT_S,
        help="seconds per child; a child still running is killed and reported as far as it got",
    )
    parser.add_argument(
        "--profile", action="store_true", help="sample the writer's stack during cycle 1"
    )
    parser.add_argument("--child", choices=("monitor", "naive"), help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--spec", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_main(args)
        return
    mixes = [m.strip() for m in args.mix.split(",") if m.strip()]
    unknown = sorted(set(mixes) - set(MIXES))
    if unknown or not mixes:
        parser.error(f"unknown mix {', '.join(unknown)}; choose from {', '.join(MIXES)}")
    started = time.perf_counter()
    workers = [int(w) for w in args.workers.split(",") if w.strip()]
    processes = [int(p) for p in args.processes.split(",") if p.strip()]
    by_mix: dict[str, list[RunResult]] = {}
    naive = None
    for mix in mixes:
        spec = FarmSpec(feeds=args.feeds, items=25, latency_s=0.05, **MIXES[mix])
        print(
            f"feed farm: {spec.feeds} feeds on {min(spec.hosts, spec.feeds)} loopback hosts"
            + ("" if mixes == ["ordinary"] else f", {mix} mix")
        )
        with FeedFarm(spec) as farm:
            runs = by_mix.setdefault(mix, [])
            for count, procs in [(w, p) for p in processes for w in workers]:
                extra = ["--workers", str(count), "--processes", str(procs)]
                extra += ["--profile"] if args.profile else []
                label = run_label(count, procs)
                runs.append(
                    run_child(farm, "monitor", *extra, timeout=args.timeout, mix=mix, label=label)
                )
                run = runs[-1]
                if run.timed_out:
                    print(f"  {run.label}: did not finish within {args.timeout:g} s: "
                          f"{run.timed_out}")  # fmt: skip
                    continue
                c1, c2 = run.cycles
                print(f"  {run.label}: cycle1 {c1.wall_s:.2f} s, cycle2 {c2.wall_s:.2f} s")
            if mix == "ordinary" and args.naive_feeds > 0:
                naive = run_child(farm, "naive", "--naive-feeds", str(args.naive_feeds))
                c1, c2 = naive.cycles
                print(f"  {naive.label}: {c1.wall_s:.2f} s + {c2.wall_s:.2f} s")
    finished = [run for run in by_mix.get("ordinary", []) if not run.timed_out]
    if finished:
        print_report(finished, naive, args.feeds, workers)
    if mixes != ["ordinary"]:
        print_mix_report(by_mix, args.timeout)
    for run in [run for runs in by_mix.values() for run in runs]:
        print_profile(run)
    print(f"\ntotal benchmark time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
