"""Starting, finding and stopping the stack's own processes, and nothing else's."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil


class StackError(RuntimeError):
    """A stack operation failed; the message says what to do about it."""


@dataclass
class ProcessRecord:
    name: str
    pid: int
    create_time: float
    cmd: list[str]
    log: str

    def process(self) -> psutil.Process | None:
        """The live process this record describes, or None (dead, or the pid was reused)."""
        try:
            proc = psutil.Process(self.pid)
            if abs(proc.create_time() - self.create_time) > 1.0 or proc.status() == psutil.STATUS_ZOMBIE:
                return None
            return proc
        except psutil.Error:
            return None


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
            return True
        except OSError:
            return False


def port_open(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def require_tool(tool: str, fix: str) -> str:
    path = shutil.which(tool)
    if not path:
        raise StackError(f"`{tool}` is not installed or not on PATH. Fix: {fix}")
    return path


class ProcessTable:
    """Pid records under <state>/run: what `up` started is exactly what `down` stops."""

    def __init__(self, state_dir: Path):
        self.run_dir = state_dir / "run"
        self.log_dir = state_dir / "logs"

    def _path(self, name: str) -> Path:
        return self.run_dir / f"{name}.json"

    def get(self, name: str) -> ProcessRecord | None:
        path = self._path(name)
        if not path.exists():
            return None
        return ProcessRecord(**json.loads(path.read_text()))

    def live(self, name: str) -> psutil.Process | None:
        record = self.get(name)
        return record.process() if record else None

    def record(self, name: str, pid: int, cmd: list[str], log: Path) -> ProcessRecord:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        rec = ProcessRecord(name, pid, psutil.Process(pid).create_time(), cmd, str(log))
        self._path(name).write_text(json.dumps(asdict(rec)))
        return rec

    def spawn(self, name: str, cmd: list[str], cwd: Path | None = None, env: dict | None = None) -> ProcessRecord:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_dir / f"{name}.log"
        with open(log, "ab") as out:
            # own session: a Ctrl-C in the terminal does not hit it, and down can stop its whole group
            proc = subprocess.Popen(
                cmd,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=cwd,
                env=env,
                start_new_session=True,
            )
        return self.record(name, proc.pid, cmd, log)

    def stop(self, name: str, timeout: float = 15.0) -> bool:
        """Stop the recorded process (and its process group); True if something was stopped."""
        record = self.get(name)
        if record is None:
            return False
        proc = record.process()
        stopped = False
        if proc is not None:
            stopped = True
            _signal_group(proc, signal.SIGTERM)
            try:
                proc.wait(timeout)
            except psutil.TimeoutExpired:
                _signal_group(proc, signal.SIGKILL)
                proc.wait(5)
        self._path(name).unlink(missing_ok=True)
        return stopped

    def forget(self, name: str) -> None:
        self._path(name).unlink(missing_ok=True)


def _signal_group(proc: psutil.Process, sig: int) -> None:
    try:
        pgid = os.getpgid(proc.pid)
        if pgid == proc.pid:  # it leads its own group (we started it with a new session)
            os.killpg(pgid, sig)
        else:
            proc.send_signal(sig)
    except (ProcessLookupError, psutil.NoSuchProcess):
        pass


def wait_until(
    check: Callable[[], bool],
    timeout: float,
    what: str,
    log: Path | None = None,
    alive: Callable[[], bool] | None = None,
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        if alive is not None and not alive():
            raise StackError(f"{what} exited during start-up.{_log_tail(log)}")
        time.sleep(0.2)
    raise StackError(f"{what} did not become ready in {timeout:.0f}s.{_log_tail(log)}")


def _log_tail(log: Path | None, lines: int = 15) -> str:
    if log is None or not Path(log).exists():
        return ""
    tail = Path(log).read_text(errors="replace").splitlines()[-lines:]
    return f"\nLast lines of {log}:\n" + "\n".join(tail)
