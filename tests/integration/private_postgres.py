"""A PostgreSQL server of a test's own (the stack's code, its own data directory and port), so a test can kill it
with SIGKILL and start it again without touching the database every other test uses."""

from __future__ import annotations

import signal
import tempfile
from pathlib import Path

import psutil

from horus.ops.stack.postgres import PostgresServer
from horus.ops.stack.processes import ProcessTable, free_port
from horus.settings import Settings


class PrivatePostgres:
    def __init__(self) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="horus-pg-")
        state = Path(self._dir.name)
        self.server = PostgresServer(state, ProcessTable(state))
        self.port = free_port()

    def start(self) -> PrivatePostgres:
        self.server.start(self.port)
        return self

    @property
    def url(self) -> str:
        return self.server.url(self.port)

    def settings(self, settings: Settings) -> Settings:
        """`settings` with the database on this server, migrated."""
        from horus.db.engine import upgrade

        private = settings.model_copy(update={"database_url": self.url})
        upgrade(private)
        return private

    def kill(self) -> None:
        """SIGKILL the postmaster and every backend: a crash, not a shutdown."""
        record = self.server.procs.get(self.server.name)
        proc = record.process() if record else None
        if proc is None:
            return
        victims = [proc, *proc.children(recursive=True)]
        for p in victims:
            try:
                p.send_signal(signal.SIGKILL)
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(victims, timeout=10)
        self.server.procs.forget(self.server.name)

    def stop(self) -> None:
        try:
            self.server.stop()
        finally:
            self._dir.cleanup()

    def __enter__(self) -> PrivatePostgres:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
