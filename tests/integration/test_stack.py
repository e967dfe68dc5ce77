"""`horus stack up | status | down` on a second, private stack: real processes, nothing left behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from horus.ops.stack import LocalStack
from horus.ops.stack.processes import StackError
from horus.settings import load_settings

HORUS = [sys.executable, "-m", "horus.cli.main"]


def horus(state_dir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HORUS_")}
    env["HORUS_STATE_DIR"] = str(state_dir)
    result = subprocess.run(HORUS + list(args), env=env, capture_output=True, text=True, timeout=300)
    if check:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


def stack_pids(state_dir: Path) -> dict[str, int]:
    return {p.stem: json.loads(p.read_text())["pid"] for p in (state_dir / "run").glob("*.json")}


def test_up_status_down_leaves_no_process(tmp_path):
    state = tmp_path / "stack"
    up = horus(state, "stack", "up")
    env_file = (state / "stack.env").read_text()
    assert "HORUS_KAFKA_BOOTSTRAP=127.0.0.1:" in env_file and "HORUS_DATABASE_URL=" in env_file
    assert "HORUS_ETH_RPC_URL=http://127.0.0.1:" in env_file and "HORUS_CLOB_URL=http://127.0.0.1:" in env_file
    pids = stack_pids(state)
    assert set(pids) == {"kafka", "postgres", "anvil", "venue"}, up.stdout

    status = horus(state, "stack", "status")
    assert status.stdout.count("ok") >= 4, status.stdout

    # the settings file is what other commands read
    settings = load_settings(state_dir=state)
    assert settings.kafka_bootstrap in env_file

    again = horus(state, "stack", "up")  # idempotent: the same processes stay
    assert "already running" in again.stdout
    assert stack_pids(state) == pids

    children = {}
    for name, pid in pids.items():
        proc = psutil.Process(pid)
        children[name] = [proc] + proc.children(recursive=True)

    horus(state, "stack", "down")
    for name, procs in children.items():
        gone, alive = psutil.wait_procs(procs, timeout=10)
        assert not alive, f"{name} left processes behind: {alive}"
    assert not (state / "stack.env").exists()
    down_status = horus(state, "stack", "status", check=False)
    assert down_status.returncode == 1 and "not running" in down_status.stdout


def test_missing_java_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no java, mvn or npm here
    settings = load_settings(state_dir=tmp_path / "s", cache_dir=tmp_path / "cache")
    with pytest.raises(StackError) as excinfo:
        LocalStack(settings).up(("kafka",))
    assert "java" in str(excinfo.value) and "apt-get install" in str(excinfo.value)
