"""The runtime builds its expensive parts once: a writer is built per batch of feeds."""

from __future__ import annotations

from pathlib import Path

from monitor.clock import FrozenClock
from monitor.store.db import upgrade
from tests.support.stack import make_runtime, write_config


def test_every_batch_writer_shares_one_targets_lexicon(tmp_path: Path, clock: FrozenClock) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    upgrade(url)
    config = write_config(tmp_path / "feeds.yaml", [{"name": "A", "url": "http://127.0.0.1:9/a"}])
    runtime = make_runtime(config, url, clock)
    try:
        first, second = runtime.writer(), runtime.writer()
        # Reading targets.yaml costs ~0.1 s; once per batch it doubled a conditional cycle.
        assert first.recorder.targets is second.recorder.targets
        assert first.recorder is not second.recorder  # routes still follow a reload
    finally:
        runtime.close()
