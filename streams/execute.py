"""execute stage: copy.decisions -> execution.results.

Two ways to run it:
- `build(runtime)`: the pure dry run (horus.domain.execute.execute) as an ordinary stage of
  `horus worker`, for pipelines without venue access: a COPY gives one DRY_RUN result.
- `run_service(...)` / `python -m streams.execute`: the real executor (horus.execution.service):
  prewrite, sign once, POST to the venue of `HORUS_VENUE_MODE`, per-follower concurrency, reconciler.
  `build_service(...)` is the one place it is assembled (credentials, chain look-up), for `horus worker`,
  `horus reconcile` and this module's own entry point.
  Follower accounts come from config.changes (folded by the service itself), or from a JSON file (a list of
  FollowerConfig objects) with `--accounts` (the caller's `follower_account(address) -> FollowerConfig | None`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from horus.credentials import CredentialStore
from horus.domain.execute import execute
from horus.execution.service import ExecuteService
from horus.settings import Settings
from horus.topics import COPY_DECISIONS, EXECUTION_RESULTS
from horus.venue.polymarket.evidence import chain_lookup
from streams.runtime import Runtime, StageSpec

NAME = "execute"
log = logging.getLogger("horus.execution")


def build(runtime: Runtime) -> StageSpec:
    return StageSpec(
        name=NAME,
        source=COPY_DECISIONS,
        input_type="CopyDecision",
        sink=EXECUTION_RESULTS,
        output_type="ExecutionResult",
        fn=execute,
    )


def accounts_from_file(path: Path) -> Callable[[str], Any]:
    """follower_account() over a JSON list of FollowerConfig objects (clear error naming the entry)."""
    from horus.domain.config import parse_follower

    entries = json.loads(Path(path).read_text())
    if not isinstance(entries, list):
        raise ValueError(f"{path}: expected a JSON list of follower configs")
    configs = {}
    for i, entry in enumerate(entries):
        try:
            config = parse_follower(entry)
        except ValueError as exc:
            raise ValueError(f"{path}: entry {i}: {exc}") from None
        configs[config.follower.lower()] = config
    return lambda address: configs.get(address.lower())


def build_service(
    settings: Settings,
    follower_account: Callable[[str], Any] | None = None,
    *,
    secrets: Callable[[str], Any] | None = None,
    **options,
) -> ExecuteService:
    """The executor service, assembled: follower accounts from config.changes (`follower_account` None) or the
    caller's; secrets from the encrypted credentials store; the chain look-up when an RPC URL is configured."""
    if secrets is None:
        secrets = CredentialStore(settings).get
    if options.get("chain") is None and settings.eth_rpc_url:
        options["chain"] = chain_lookup(settings.eth_rpc_url, settings.exchanges, settings.chain_lookback_blocks)
    return ExecuteService(settings, follower_account=follower_account, secrets=secrets, **options)


def run_service(
    settings: Settings,
    follower_account: Callable[[str], Any] | None,
    stop: threading.Event,
    *,
    secrets: Callable[[str], Any] | None = None,
    **options,
) -> None:
    """Run the executor until `stop` is set (blocking; its own event loop). `follower_account` None: accounts
    from config.changes. Raises LedgerUnreachable (the ledger stayed down past its bound) or SwitchesUnknown (a
    tail of config.changes or control.commands died): restart it (exit 70)."""
    service = build_service(settings, follower_account, secrets=secrets, **options)
    asyncio.run(until_stopped(service.run, stop))


async def until_stopped(run: Callable[[asyncio.Event], Any], stop: threading.Event) -> Any:
    """`await run(stopper)` with an asyncio event set when the thread event `stop` is (a signal handler's)."""
    stopper = asyncio.Event()
    loop = asyncio.get_running_loop()
    threading.Thread(target=lambda: (stop.wait(), loop.call_soon_threadsafe(stopper.set)), daemon=True).start()
    return await run(stopper)


def main(argv: list[str] | None = None) -> None:  # pragma: no cover - exercised by subprocess tests
    from horus.logs import configure_logging
    from horus.settings import load_settings
    from horus.signals import stop_on_signals

    parser = argparse.ArgumentParser(prog="python -m streams.execute", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--accounts", type=Path, help="JSON list of FollowerConfig objects (default: the followers on config.changes)"
    )
    parser.add_argument("--loglevel", default="info")
    parser.add_argument("--resend-unknown", type=int, default=1, help="same-bytes re-sends after an unknown reply")
    parser.add_argument("--no-reconcile", action="store_true", help="do not run the reconciler in this process")
    args = parser.parse_args(argv)
    configure_logging(args.loglevel)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per venue request drowns the log
    from horus.execution.ledger import LedgerUnreachable
    from horus.execution.service import SwitchesUnknown
    from horus.kafka.output import EXIT_OUTPUT_LOST

    stop = stop_on_signals()
    accounts = accounts_from_file(args.accounts) if args.accounts else None
    try:
        run_service(
            load_settings(), accounts, stop, resend_unknown=args.resend_unknown, reconcile=not args.no_reconcile
        )
    except (LedgerUnreachable, SwitchesUnknown) as exc:
        log.critical("execute: %s; exiting %d to be restarted", exc, EXIT_OUTPUT_LOST)
        logging.shutdown()
        raise SystemExit(EXIT_OUTPUT_LOST) from None


if __name__ == "__main__":  # pragma: no cover
    main()
