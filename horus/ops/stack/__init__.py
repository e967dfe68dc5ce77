"""The local stack: Apache Kafka (KRaft), PostgreSQL, anvil and the paper venue (the CLOB simulator) on free
loopback ports.

`up` is idempotent (healthy parts are left alone), writes the connection settings to
`<state_dir>/stack.env` where every `horus` command and the tests read them, and `down` stops
exactly the processes `up` started (pid records under `<state_dir>/run`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from horus.ops.stack.anvil import AnvilNode
from horus.ops.stack.kafka import KafkaBroker
from horus.ops.stack.postgres import PostgresServer
from horus.ops.stack.processes import ProcessTable, StackError, free_port, port_is_free
from horus.ops.stack.venue import PaperVenue
from horus.settings import Settings

PARTS = ("kafka", "postgres", "anvil", "venue")
INFRASTRUCTURE = PARTS[:3]  # what the pipeline runs on; a demo or test run brings its own simulator
__all__ = ["INFRASTRUCTURE", "LocalStack", "PartStatus", "StackError", "PARTS"]


@dataclass
class PartStatus:
    name: str
    pid: int | None
    address: str
    healthy: bool
    detail: str


class LocalStack:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.state_dir = settings.state_dir.resolve()  # child processes must not depend on our cwd
        self.procs = ProcessTable(self.state_dir)
        self.kafka = KafkaBroker(
            self.state_dir, settings.cache_dir, settings.kafka_version, settings.partitions, self.procs
        )
        self.postgres = PostgresServer(self.state_dir, self.procs)
        self.anvil = AnvilNode(settings.cache_dir, settings.chain_id, self.procs)
        self.venue = PaperVenue(self.procs, settings.venue_chain_id, settings.paper_balance)
        self.ports_file = self.state_dir / "ports.json"

    # ports ---------------------------------------------------------------
    def _ports(self) -> dict[str, int]:
        return json.loads(self.ports_file.read_text()) if self.ports_file.exists() else {}

    def _save_ports(self, ports: dict[str, int]) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.ports_file.write_text(json.dumps(ports, indent=2))

    @staticmethod
    def _reuse_or_pick(ports: dict[str, int], key: str) -> int:
        port = ports.get(key)
        if port and port_is_free(port):
            return port
        ports[key] = free_port()
        return ports[key]

    # lifecycle -------------------------------------------------------------
    def up(self, parts: tuple[str, ...] = PARTS, progress: Callable[[str], None] = lambda _: None) -> dict[str, str]:
        ports = self._ports()
        for part in parts:
            started = time.monotonic()
            if self._running_and_healthy(part, ports):
                progress(f"{part}: already running")
                continue
            self._stop(part)  # a dead or unhealthy leftover
            if part == "kafka":
                old_controller = ports.get("kafka_controller")
                port = self._reuse_or_pick(ports, "kafka")
                controller = self._reuse_or_pick(ports, "kafka_controller")
                if old_controller and old_controller != controller:
                    # the KRaft voter set remembers the controller endpoint; a dev stack just starts over
                    self.kafka.reset_data()
                progress(f"kafka: starting Apache Kafka {self.settings.kafka_version} (KRaft) on 127.0.0.1:{port}")
                self._save_ports(ports)
                self.kafka.start(port, controller)
            elif part == "postgres":
                port = self._reuse_or_pick(ports, "postgres")
                progress(f"postgres: starting on 127.0.0.1:{port}")
                self._save_ports(ports)
                self.postgres.start(port)
            elif part == "anvil":
                port = self._reuse_or_pick(ports, "anvil")
                progress(f"anvil: starting on 127.0.0.1:{port}")
                self._save_ports(ports)
                self.anvil.start(port)
            elif part == "venue":
                port = self._reuse_or_pick(ports, "venue")
                progress(f"venue: starting the CLOB simulator (paper venue) on 127.0.0.1:{port}")
                self._save_ports(ports)
                self.venue.start(port)
                progress(
                    "venue: a fresh paper venue (its state lives in memory): follower credentials stored "
                    "before need `horus credentials sync-api`"
                )
            else:
                raise StackError(f"unknown stack part {part!r}; choose from {', '.join(PARTS)}")
            progress(f"{part}: ready in {time.monotonic() - started:.1f}s")
        env = self.connection_env(ports)
        self.write_env(env)
        return env

    def _running_and_healthy(self, part: str, ports: dict[str, int]) -> bool:
        if part not in ports or self.procs.live(part) is None:
            return False
        return self._health(part, ports[part])[0]

    def _health(self, part: str, port: int) -> tuple[bool, str]:
        parts: dict[str, KafkaBroker | PostgresServer | AnvilNode | PaperVenue] = {
            "kafka": self.kafka,
            "postgres": self.postgres,
            "anvil": self.anvil,
            "venue": self.venue,
        }
        return parts[part].healthy(port)

    def connection_env(self, ports: dict[str, int]) -> dict[str, str]:
        env = {}
        if "kafka" in ports:
            env["HORUS_KAFKA_BOOTSTRAP"] = self.kafka.bootstrap(ports["kafka"])
        if "postgres" in ports:
            env["HORUS_DATABASE_URL"] = self.postgres.url(ports["postgres"])
        if "anvil" in ports:
            env["HORUS_ETH_RPC_URL"] = self.anvil.url(ports["anvil"])
            env["HORUS_CHAIN_ID"] = str(self.settings.chain_id)
        if "venue" in ports:  # paper mode talks to this simulator and nothing else (horus.venue.guard)
            env["HORUS_CLOB_URL"] = self.venue.url(ports["venue"])
        return env

    def write_env(self, env: dict[str, str]) -> Path:
        path = self.settings.stack_env_path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            "# written by `horus stack up`; environment variables override it\n"
            + "".join(f"{k}={v}\n" for k, v in sorted(env.items()))
        )
        return path

    def status(self) -> list[PartStatus]:
        ports = self._ports()
        addresses = {
            "kafka": lambda p: self.kafka.bootstrap(p),
            "postgres": lambda p: f"127.0.0.1:{p}",
            "anvil": lambda p: self.anvil.url(p),
            "venue": lambda p: self.venue.url(p),
        }
        rows = []
        for part in PARTS:
            record = self.procs.get(part)
            proc = record.process() if record else None
            port = ports.get(part)
            if proc is None or port is None:
                rows.append(PartStatus(part, None, addresses[part](port) if port else "-", False, "not running"))
                continue
            healthy, detail = self._health(part, port)
            rows.append(PartStatus(part, proc.pid, addresses[part](port), healthy, detail))
        return rows

    def _stop(self, part: str) -> bool:
        # postgres forks its own server (pg_ctl); the others are our direct children
        return self.postgres.stop() if part == "postgres" else self.procs.stop(part)

    def down(self, progress: Callable[[str], None] = lambda _: None) -> list[str]:
        stopped = []
        for part in reversed(PARTS):
            if self._stop(part):
                stopped.append(part)
                progress(f"{part}: stopped")
        self.settings.stack_env_path.unlink(missing_ok=True)
        return stopped
