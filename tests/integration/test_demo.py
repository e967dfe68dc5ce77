"""`horus demo` (what `make demo` runs) ends by itself with every fill through every stage, from the
replay and from the chain source, and leaves none of its processes behind."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

import psutil
import pytest

pytestmark = pytest.mark.integration


def demo_children(since: float) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline", "create_time"]):
        cmd = " ".join(proc.info["cmdline"] or [])
        if (
            proc.info["create_time"] >= since
            and "horus.cli.main" in cmd
            and any(word in cmd for word in (" worker", " projections run", " ingest chain"))
        ):
            try:  # the demo's children work on its own topics (other tools may run workers meanwhile)
                if proc.environ().get("HORUS_TOPIC_PREFIX", "").startswith("demo."):
                    found.append(proc)
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
    return found


@pytest.mark.parametrize("source", ["replay", "chain"])
def test_demo_runs_to_the_end_and_cleans_up(stack_settings, source):
    started = time.time()
    env = {**os.environ, **stack_settings.as_env()}
    run = subprocess.run(
        [sys.executable, "-m", "horus.cli.main", "demo", "--rate", "0", "--source", source, "--timeout", "150"],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    said = " ".join(run.stdout.split())
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    done = re.search(
        r"done in [\d.]+s: 120 leader fills, 309 candidates, 309 decisions \((\d+) copies, (\d+) skips\), "
        r"(\d+) execution results, (\d+) settlement events, all folded into Postgres",
        said,
    )
    assert done, said[-2000:]
    copies, skips, results, settlements = map(int, done.groups())
    assert copies + skips == 309 and copies > 0 and skips > 0
    assert results >= copies and settlements == results  # every copy has a venue outcome
    assert "Per follower (paper venue)" in run.stdout and "PRICE_MOVED" in run.stdout
    for name in ("alice", "bob", "carol", "dave", "erin"):
        assert name in run.stdout
    assert not demo_children(started), "the demo left processes behind"
