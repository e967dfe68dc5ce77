"""`horus orders sign`: sign one CLOB V2 order (EIP-712) with a local key and print its hash and signature."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import typer

from horus.cli.common import fail

app = typer.Typer(help="CLOB V2 orders: sign and hash.", no_args_is_help=True)

KEY_ENV = "HORUS_SIGNER_KEY"


@app.callback()
def _group() -> None:
    """CLOB V2 orders: sign and hash."""


def _read_key(key_file: Path | None) -> str:
    if key_file is not None:
        try:
            return key_file.read_text().strip()
        except OSError as exc:
            fail(f"cannot read --key-file {key_file}: {exc.strerror or exc}")
    key = os.environ.get(KEY_ENV, "").strip()
    if not key:
        fail(f"no signing key: set {KEY_ENV} to the hex private key, or pass --key-file PATH")
    return key


@app.command()
def sign(
    file: Path = typer.Option(None, "--file", help="JSON file with the order (default: read stdin)"),
    exchange: str = typer.Option(
        None,
        "--exchange",
        metavar="ADDRESS",
        help="verifying contract (default: the chain's CTF exchange for domain 2, "
        "ExchangeV3 for domain 3; add --neg-risk for the neg-risk exchange)",
    ),
    neg_risk: bool = typer.Option(False, "--neg-risk", help="default exchange: the neg-risk CTF exchange"),
    chain_id: int = typer.Option(137, "--chain-id", help="EIP-712 domain chainId"),
    domain_version: str = typer.Option(
        "2", "--domain-version", help="2 = CTF exchanges (V1 markets), 3 = ExchangeV3 (Protocol V2 markets)"
    ),
    key_file: Path = typer.Option(
        None, "--key-file", metavar="PATH", help=f"file holding the hex private key (default: ${KEY_ENV})"
    ),
) -> None:
    """Sign ONE order given as a JSON object: salt, maker, signer, tokenId, makerAmount, takerAmount,
    side ("BUY"/"SELL" or 0/1), signatureType (0-3), timestamp (ms), metadata, builder (bytes32, default zero).

    Prints {"order_hash": ..., "signature": ...}. The key is never printed."""
    from horus.venue.polymarket.orders import Domain, OrderError, exchange_for, order_fields_from_wire, sign_order

    try:
        text = file.read_text() if file is not None else sys.stdin.read()
    except OSError as exc:
        fail(f"cannot read --file {file}: {exc.strerror or exc}")
    try:
        data = json.loads(text)
    except ValueError as exc:
        fail(f"input is not JSON: {exc}")
    key = _read_key(key_file)
    try:
        if domain_version not in ("2", "3"):
            raise OrderError(f"--domain-version must be 2 or 3, got {domain_version!r}")
        if exchange is None:
            exchange = exchange_for("v2" if domain_version == "3" else "v1", neg_risk, chain_id).exchange
        domain = Domain(exchange=exchange, chain_id=chain_id, version=domain_version)
        signed = sign_order(order_fields_from_wire(data), domain, key)
    except ValueError as exc:  # OrderError included; messages never contain the key
        fail(str(exc))
    typer.echo(json.dumps({"order_hash": signed.order_hash, "signature": signed.signature}))
