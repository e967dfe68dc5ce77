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
REQUIRED = ("salt", "maker", "signer", "tokenId", "makerAmount", "takerAmount", "side", "signatureType", "timestamp")
ZERO32 = "0x" + "00" * 32


@app.callback()
def _group() -> None:
    """CLOB V2 orders: sign and hash."""


def _uint(name: str, value: object) -> int:
    # JSON numbers or decimal strings (the wire form); never floats, which would lose digits
    if isinstance(value, (bool, float)):
        raise ValueError(f"{name} must be an integer or a decimal string, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    raise ValueError(f"{name} must be an integer or a decimal string, got {value!r}")


def _side(value: object) -> int:
    if isinstance(value, str) and value.upper() in ("BUY", "SELL"):
        return 0 if value.upper() == "BUY" else 1
    if value in (0, 1) and not isinstance(value, bool):
        return int(value)
    raise ValueError(f'side must be "BUY", "SELL", 0 or 1, got {value!r}')


def fields_from_json(data: object):
    """OrderFields from the wire-shaped order object (py-clob-client-v2's field names)."""
    from horus.venue.polymarket.orders import OrderFields

    if not isinstance(data, dict):
        raise ValueError("input must be one JSON object with the order fields " + ", ".join(REQUIRED))
    missing = [name for name in REQUIRED if name not in data]
    if missing:
        raise ValueError(f"order is missing {', '.join(missing)}")
    return OrderFields(
        salt=_uint("salt", data["salt"]),
        maker=data["maker"],
        signer=data["signer"],
        token_id=_uint("tokenId", data["tokenId"]),
        maker_amount=_uint("makerAmount", data["makerAmount"]),
        taker_amount=_uint("takerAmount", data["takerAmount"]),
        side=_side(data["side"]),
        signature_type=_uint("signatureType", data["signatureType"]),
        timestamp_ms=_uint("timestamp", data["timestamp"]),
        metadata=data.get("metadata") or ZERO32,
        builder=data.get("builder") or ZERO32,
    )


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
    from horus.venue.polymarket.orders import Domain, OrderError, exchange_for, sign_order

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
        signed = sign_order(fields_from_json(data), domain, key)
    except ValueError as exc:  # OrderError included; messages never contain the key
        fail(str(exc))
    typer.echo(json.dumps({"order_hash": signed.order_hash, "signature": signed.signature}))
