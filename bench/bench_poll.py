"""Benchmark poll cycles: 1,000 local feeds through monitor versus a naive feedparser loop.

Run: python bench/bench_poll.py   [--workers 32,48] [--processes 0,1,2] [--feeds 1000]
                                 [--naive-feeds 200]

A feed farm in its own process (bench/feedfarm.py) serves 1,000 RSS feeds of 25 items over
250 loopback hosts, each answer delayed 50 ms, with ETag/304. For each worker count a fresh
child process builds the real runtime (packaged classifier, SQLite file database, INFO log to
a file) and times cycle 1 (every feed new: fetch, parse, classify, store 25,000 items) and
cycle 2 (every feed answers 304). The naive baseline, `feedparser.parse(httpx.get(url).content)`
in a sequential loop with no storage or classification, runs in its own child on the first
`--naive-feeds` feeds and is extrapolated linearly to all feeds (its cost is per feed).
Peak RSS is each child's VmHWM, so the farm and this parent never count. Prints figures and
ratios, and whether the targets are met; asserts nothing about time. Finishes in ~2-4 min.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from feedfarm import FarmSpec, FeedFarm, feed_url  # noqa: E402

TARGET_CYCLE1_S = 10.0
TARGET_CYCLE2_S = 2.0
TARGET_RSS_MB = 200.0
CHILD_TIMEOUT_S = 240.0


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
    )


def write_feeds_yaml(path: Path, urls: Sequence[str]) -> None:
    """A feeds.yaml with one feed per URL and no alert route (alerts go to the console)."""
    lines = ["feeds:"]
    for index, url in enumerate(urls):
        lines += [f"  - name: farm-{index:04d}", f"    url: {url}", "    language: en"]
    lines.append("alerts: []")
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


def run_monitor(urls: Sequence[str], workers: int, processes: int) -> RunResult:
    """Build the real runtime on a fresh SQLite file and time two full cycles."""
    from sqlalchemy import func, select

    from monitor.bootstrap import Settings, build_runtime, tune_process_for_service
    from monitor.store.db import upgrade_in_child
    from monitor.store.models import ItemRow

    with tempfile.TemporaryDirectory(prefix="bench-poll-") as tmp:
        log_to_file(Path(tmp) / "monitor.log")
        config = Path(tmp) / "feeds.yaml"
        write_feeds_yaml(config, urls)
        db_url = f"sqlite:///{tmp}/bench.db"
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

        cycles = [timed(cycle), timed(cycle)]
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
        result = run_monitor(urls, int(args.workers), int(args.processes))
    else:
        result = run_naive(urls, min(args.naive_feeds, len(urls)), len(urls))
    print(json.dumps(asdict(result)))


# -- the parent: start the farm, run the children, print the table ----------------------------


def run_child(farm: FeedFarm, child: str, *extra: str) -> RunResult:
    """Run one measuring child process against the farm and read its result."""
    command = [
        sys.executable, __file__, "--child", child, "--port", str(farm.port),
        "--spec", json.dumps(asdict(farm.spec)), *extra,
    ]  # fmt: skip
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=CHILD_TIMEOUT_S, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{child} child failed:\n{done.stderr[-3000:]}")
    data: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    data["cycles"] = [Cycle(**c) for c in data["cycles"]]
    return RunResult(**data)


def _ok(value: float, target: float) -> str:
    return "ok" if value <= target else "NO"


def default_label() -> str:
    """The label of the run that uses the daemon's default threads and parser processes."""
    from monitor.bootstrap import DEFAULT_WORKERS, default_parse_processes

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
    parser.add_argument("--child", choices=("monitor", "naive"), help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--spec", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_main(args)
        return
    started = time.perf_counter()
    spec = FarmSpec(feeds=args.feeds, items=25, latency_s=0.05)
    workers = [int(w) for w in args.workers.split(",") if w.strip()]
    processes = [int(p) for p in args.processes.split(",") if p.strip()]
    print(f"feed farm: {spec.feeds} feeds on {min(spec.hosts, spec.feeds)} loopback hosts")
    with FeedFarm(spec) as farm:
        runs = []
        for count, procs in [(w, p) for p in processes for w in workers]:
            extra = ("--workers", str(count), "--processes", str(procs))
            runs.append(run_child(farm, "monitor", *extra))
            c1, c2 = runs[-1].cycles
            print(f"  {runs[-1].label}: cycle1 {c1.wall_s:.2f} s, cycle2 {c2.wall_s:.2f} s")
        naive = None
        if args.naive_feeds > 0:
            naive = run_child(farm, "naive", "--naive-feeds", str(args.naive_feeds))
            c1, c2 = naive.cycles
            print(f"  {naive.label}: {c1.wall_s:.2f} s + {c2.wall_s:.2f} s")
    print_report(runs, naive, spec.feeds, workers)
    print(f"\ntotal benchmark time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
