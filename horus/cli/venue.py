"""`horus venue`: run the local CLOB V2 venue simulator (py-clob-client-v2 compatible) in the foreground."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from horus.cli.common import console, fail


def _load_seed(path: Path) -> dict:
    """A seed file is JSON or YAML: a list of markets, or {markets, accounts, faults}."""
    import yaml

    try:
        text = path.read_text()
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        fail(f"--seed-markets {path}: {exc}")
    if isinstance(data, list):
        return {"markets": data}
    if not isinstance(data, dict):
        fail(f"--seed-markets {path}: expected a list of markets or an object with 'markets'")
    return data


def venue_command(
    host: str = typer.Option("127.0.0.1", "--host", help="address to listen on"),
    port: int = typer.Option(8081, "--port", min=0, max=65535, help="port to listen on"),
    seed_markets: Path = typer.Option(
        None,
        "--seed-markets",
        exists=True,
        dir_okay=False,
        help="JSON/YAML: markets (and optionally accounts, faults) to start with",
    ),
    latency_ms: float = typer.Option(0, "--latency-ms", min=0, help="latency added to every venue reply"),
    jitter_ms: float = typer.Option(0, "--jitter-ms", min=0, help="uniform random extra latency, 0..N ms"),
    seed: int = typer.Option(0, "--seed", help="seed of the fault RNG and API-key derivation"),
    default_collateral_e6: int = typer.Option(
        0, "--default-collateral-e6", min=0, help="collateral every never-seen maker starts with"
    ),
    chain_id: int = typer.Option(137, "--chain-id", help="chain id in the EIP-712 domains (137 or 80002)"),
    follow_leaders: bool = typer.Option(
        False,
        "--follow-leaders",
        help="a paper venue that starts empty: decide makes a market for each token "
        "a leader trades and moves its book to the leader's prices (what "
        "`horus stack up` runs)",
    ),
) -> None:
    """Serve the CLOB V2 REST subset py-clob-client-v2 uses, plus /_sim admin routes (accounts, markets, faults)."""
    from pydantic import ValidationError

    from horus.venue.simulator.clob.config import SimulatorConfig
    from horus.venue.simulator.clob.runner import serve_forever

    data = _load_seed(seed_markets) if seed_markets else {}
    faults = {
        **data.get("faults", {}),
        "latency_ms": latency_ms or data.get("faults", {}).get("latency_ms", 0),
        "jitter_ms": jitter_ms or data.get("faults", {}).get("jitter_ms", 0),
    }
    try:
        config = SimulatorConfig.model_validate(
            {
                **data,
                "faults": faults,
                "seed": seed,
                "chain_id": chain_id,
                "default_collateral_e6": default_collateral_e6,
            }
        )
    except ValidationError as exc:
        fail(f"invalid simulator settings: {exc}")
    console.print(f"CLOB V2 simulator on http://{host}:{port} ({len(config.markets)} markets, latency {latency_ms} ms)")
    serve_forever(config, host, port, follow_leaders=follow_leaders)
