"""The paper venue of the local stack: the Horus CLOB simulator (`horus venue`) on a loopback port.

It starts with no markets and says so (`--follow-leaders`: decide makes one for each token a leader trades) and
every account it has never seen holds `HORUS_PAPER_BALANCE` pUSD, so a paper follower needs no funding step.
Its state lives in memory: a restart starts the paper venue afresh.
"""

from __future__ import annotations

import sys
from decimal import Decimal
from pathlib import Path

import httpx

from horus.ops.stack.processes import ProcessTable, wait_until
from horus.venue.guard import not_the_simulator

SEED = 0  # fixed: the API keys the simulator derives for a signer are the same after a restart


class PaperVenue:
    name = "venue"

    def __init__(self, procs: ProcessTable, chain_id: int, balance: str):
        self.procs = procs
        self.chain_id = chain_id
        self.balance_e6 = int(Decimal(balance) * 1_000_000)

    def url(self, port: int) -> str:
        return f"http://127.0.0.1:{port}"

    def start(self, port: int) -> None:
        record = self.procs.spawn(
            self.name,
            [
                sys.executable,
                "-m",
                "horus.cli.main",
                "venue",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--chain-id",
                str(self.chain_id),
                "--seed",
                str(SEED),
                "--default-collateral-e6",
                str(self.balance_e6),
                "--follow-leaders",
            ],
        )
        wait_until(
            lambda: self.healthy(port)[0],
            timeout=60,
            what="the CLOB simulator",
            log=Path(record.log),
            alive=lambda: self.procs.live(self.name) is not None,
        )

    def healthy(self, port: int) -> tuple[bool, str]:
        problem = not_the_simulator(self.url(port), timeout_s=2.0)
        if problem is not None:
            return False, f"not the CLOB simulator on {self.url(port)} ({problem})"
        try:
            health = httpx.get(f"{self.url(port)}/_sim/health", timeout=2.0).json()
            return True, f"paper venue: {health['markets']} markets, {health['orders']} orders"
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            return False, f"CLOB simulator health unreadable ({exc.__class__.__name__})"
