"""Benchmark the daemon itself: `monitor run` on 1,000 local feeds, as an operator starts it.

Run: python bench/bench_daemon.py   [--feeds 1000] [--seconds 40]

The feed farm (bench/feedfarm.py) serves 1,000 RSS feeds of 25 items over 250 loopback hosts,
50 ms per answer. `monitor run` starts as a subprocess with its defaults except politeness
(MONITOR_HOST_SPACING=0, MONITOR_PER_HOST=4: every feed is on the farm's few hosts), a fresh
SQLite file and no alert route (alerts go to the console). For `--seconds` it samples the RSS
of the daemon and its parser processes from /proc; then it sends SIGTERM. It prints when the
first and the last of the 1,000 feeds were polled (from the daemon's own log lines), the cycle
lines, warnings and errors, peak RSS, and how long the stop took. Prints figures only.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_poll import children, proc_status_mb, write_feeds_yaml  # noqa: E402
from feedfarm import FarmSpec, FeedFarm, feed_url  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=40.0)
    args = parser.parse_args()
    spec = FarmSpec(feeds=args.feeds, items=25, latency_s=0.05)
    with FeedFarm(spec) as farm, tempfile.TemporaryDirectory(prefix="bench-daemon-") as tmp:
        config = Path(tmp) / "feeds.yaml"
        write_feeds_yaml(config, [feed_url(spec, farm.port, i) for i in range(spec.feeds)])
        env = dict(
            os.environ,
            MONITOR_CONFIG=str(config),
            MONITOR_DB_URL=f"sqlite:///{tmp}/daemon.db",
            MONITOR_HOST_SPACING="0",
            MONITOR_PER_HOST="4",
        )
        started = time.monotonic()
        daemon = subprocess.Popen(
            [sys.executable, "-m", "monitor", "run"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert daemon.stdout is not None
        lines: list[tuple[float, str]] = []

        def read() -> None:
            for line in daemon.stdout:  # type: ignore[union-attr]
                lines.append((time.monotonic() - started, line.rstrip()))

        threading.Thread(target=read, daemon=True).start()
        peak = peak_main = 0.0
        while time.monotonic() - started < args.seconds and daemon.poll() is None:
            main_rss = proc_status_mb("VmRSS", daemon.pid)
            total = main_rss + sum(proc_status_mb("VmRSS", c) for c in children(daemon.pid))
            peak, peak_main = max(peak, total), max(peak_main, main_rss)
            time.sleep(0.2)
        stop_at = time.monotonic()
        daemon.send_signal(signal.SIGTERM)
        code = daemon.wait(timeout=30)
        stopped_s = time.monotonic() - stop_at
    polls = [at for at, line in lines if " poll feed=" in line]
    cycles = [(at, line.split("cycle ", 1)[1]) for at, line in lines if " cycle polled=" in line]
    noisy = [line for _, line in lines if " WARNING " in line or " ERROR " in line]
    print(f"`monitor run` on {spec.feeds} feeds × 25 items, 50 ms latency, SQLite, defaults")
    if polls:
        last = f"{polls[spec.feeds - 1]:.1f} s" if len(polls) >= spec.feeds else "not reached"
        print(f"  feeds polled: {len(polls)}; first at {polls[0]:.1f} s, "
              f"feed {spec.feeds} at {last} after start")  # fmt: skip
    for at, text in cycles:
        print(f"  {at:5.1f} s  cycle {text}")
    print(f"  peak RSS: {peak:.1f} MB (daemon {peak_main:.1f} MB + parser processes)")
    print(f"  warnings and errors in the log: {len(noisy)}")
    for line in noisy[:5]:
        print(f"    {line[:200]}")
    print(f"  SIGTERM → exit {code} in {stopped_s:.2f} s")


if __name__ == "__main__":
    main()
