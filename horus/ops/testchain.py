"""Real Polymarket `OrderFilled` logs on a local anvil chain, for integration tests and demos.

`deploy_emitters` deploys two stand-in exchanges built from `contracts/src/FillEmitter.sol`
(compiled on demand, cached): `V1FillEmitter` emits the CTF Exchange V1 event, `V2FillEmitter`
the V2/V3 one, each with the exact signature, so topic0, topic order and data layout are those of
mainnet. The emit helpers send one transaction each and return its mined receipt (with `logs`):

    v1, v2 = deploy_emitters(rpc_url)
    emit_v2(rpc_url, v2, V2Fill(order_hash, maker=leader, taker=None, side=0, token_id=tok,
                                maker_amount_filled=5_000_000, taker_amount_filled=10_000_000))
    emit_batch(rpc_url, v2, [fill_a, fill_b])          # several fills, ONE transaction
    emit_raw(rpc_url, v2, [RawLog([topic0], b"\\x01")])  # any log shape (malformed, OrdersMatched...)
    emit_raw(rpc_url, v2, [v2_log(fill, v2), RawLog(...)])  # mix real-shaped fills and odd logs in one tx

Hashes and bytes32 fields take bytes or 0x-hex; shorter values are left-padded to 32 bytes (as an
address or a number would be). Addresses may be any case.

Transactions come from one of anvil's unlocked dev accounts (`eth_accounts`, no private key here);
by default the last one, so tests that sign with account 0 do not race on its nonce.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

from eth_abi import encode
from eth_utils import keccak, to_bytes, to_checksum_address
from web3 import Web3

V1_ORDER_FILLED_SIGNATURE = "OrderFilled(bytes32,address,address,uint256,uint256,uint256,uint256,uint256)"
V2_ORDER_FILLED_SIGNATURE = "OrderFilled(bytes32,address,address,uint8,uint256,uint256,uint256,uint256,bytes32,bytes32)"
V1_ORDER_FILLED_TOPIC0 = "0x" + keccak(text=V1_ORDER_FILLED_SIGNATURE).hex()
V2_ORDER_FILLED_TOPIC0 = "0x" + keccak(text=V2_ORDER_FILLED_SIGNATURE).hex()
# non-indexed parameters, in data order
V1_DATA_TYPES = ("uint256", "uint256", "uint256", "uint256", "uint256")
V2_DATA_TYPES = ("uint8", "uint256", "uint256", "uint256", "uint256", "bytes32", "bytes32")
ZERO32 = b"\x00" * 32


class Emitters(NamedTuple):
    v1: str  # checksummed address of the V1FillEmitter
    v2: str  # checksummed address of the V2FillEmitter


@dataclass(frozen=True)
class V1Fill:
    """One CTF Exchange V1 `OrderFilled`. `taker=None` means the emitter itself (the taker order's own fill)."""

    order_hash: bytes | str
    maker: str
    taker: str | None
    maker_asset_id: int
    taker_asset_id: int
    maker_amount_filled: int
    taker_amount_filled: int
    fee: int = 0


@dataclass(frozen=True)
class V2Fill:
    """One V2/V3 `OrderFilled` (side 0 = BUY, 1 = SELL). `taker=None` means the emitter itself."""

    order_hash: bytes | str
    maker: str
    taker: str | None
    side: int
    token_id: int
    maker_amount_filled: int
    taker_amount_filled: int
    fee: int = 0
    builder: bytes | str = ZERO32
    metadata: bytes | str = ZERO32


@dataclass(frozen=True)
class RawLog:
    """Any log: 0..4 topics (32 bytes each) and data of any length (need not be whole words)."""

    topics: Sequence[bytes | str] = field(default_factory=tuple)
    data: bytes | str = b""


# ---------------------------------------------------------------------------------------------
@lru_cache(maxsize=8)
def web3_for(rpc_url: str) -> Web3:
    return Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": 30}))


def _sender(w3: Web3, sender: str | None) -> str:
    return to_checksum_address(sender) if sender else w3.eth.accounts[-1]


def _b32(value: bytes | str) -> bytes:
    raw = to_bytes(hexstr=value) if isinstance(value, str) else bytes(value)
    if len(raw) > 32:
        raise ValueError(f"{value!r} is longer than 32 bytes")
    return raw.rjust(32, b"\x00")


def _bytes(value: bytes | str) -> bytes:
    return to_bytes(hexstr=value) if isinstance(value, str) else bytes(value)


_ABI: dict[str, list] = {}  # the ABIs do not depend on where the build lives


@lru_cache(maxsize=4)
def _artifacts(cache_dir: Path | None) -> dict[str, tuple[list, str]]:
    """(abi, bytecode) of both emitters, built on demand into `cache_dir` (default: the settings' one)."""
    from horus.ops.stack.foundry import build_contracts
    from horus.settings import load_settings

    build = build_contracts(cache_dir or load_settings().cache_dir)
    artifacts = {name: build.artifact(name) for name in ("V1FillEmitter", "V2FillEmitter")}
    for name, (abi, _) in artifacts.items():
        _ABI.setdefault(name, abi)
    return artifacts


def _contract(rpc_url: str, address: str, name: str):
    abi = _ABI.get(name) or _artifacts(None)[name][0]
    return web3_for(rpc_url).eth.contract(address=to_checksum_address(address), abi=abi)


def _transact(rpc_url: str, call, sender: str | None):
    w3 = web3_for(rpc_url)
    tx_hash = call.transact({"from": _sender(w3, sender)})
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30, poll_latency=0.05)
    if receipt["status"] != 1:
        raise RuntimeError(f"transaction {tx_hash.hex()} reverted")
    return receipt


# ---------------------------------------------------------------------------------------------
def deploy_emitters(rpc_url: str, *, cache_dir: Path | None = None, sender: str | None = None) -> Emitters:
    """Deploy a fresh V1FillEmitter and V2FillEmitter (building them first if needed)."""
    w3 = web3_for(rpc_url)
    artifacts = _artifacts(cache_dir)
    addresses = []
    for name in ("V1FillEmitter", "V2FillEmitter"):
        abi, bytecode = artifacts[name]
        receipt = _transact(rpc_url, w3.eth.contract(abi=abi, bytecode=bytecode).constructor(), sender)
        addresses.append(receipt["contractAddress"])
    return Emitters(*addresses)


def _v1_tuple(fill: V1Fill, emitter: str) -> tuple:
    return (
        _b32(fill.order_hash),
        to_checksum_address(fill.maker),
        to_checksum_address(fill.taker or emitter),
        fill.maker_asset_id,
        fill.taker_asset_id,
        fill.maker_amount_filled,
        fill.taker_amount_filled,
        fill.fee,
    )


def _v2_tuple(fill: V2Fill, emitter: str) -> tuple:
    return (
        _b32(fill.order_hash),
        to_checksum_address(fill.maker),
        to_checksum_address(fill.taker or emitter),
        fill.side,
        fill.token_id,
        fill.maker_amount_filled,
        fill.taker_amount_filled,
        fill.fee,
        _b32(fill.builder),
        _b32(fill.metadata),
    )


def emit_v1(rpc_url: str, emitter: str, fill: V1Fill, *, sender: str | None = None):
    """One V1 `OrderFilled` from `emitter` (a V1FillEmitter), in its own transaction. Returns the receipt."""
    contract = _contract(rpc_url, emitter, "V1FillEmitter")
    return _transact(rpc_url, contract.functions.emitFill(_v1_tuple(fill, emitter)), sender)


def emit_v2(rpc_url: str, emitter: str, fill: V2Fill, *, sender: str | None = None):
    """One V2/V3 `OrderFilled` from `emitter` (a V2FillEmitter), in its own transaction. Returns the receipt."""
    contract = _contract(rpc_url, emitter, "V2FillEmitter")
    return _transact(rpc_url, contract.functions.emitFill(_v2_tuple(fill, emitter)), sender)


def emit_batch(rpc_url: str, emitter: str, fills: Sequence[V1Fill] | Sequence[V2Fill], *, sender: str | None = None):
    """Several fills of one kind (all V1Fill or all V2Fill) in ONE transaction, in order. Returns the receipt."""
    if not fills:
        raise ValueError("emit_batch needs at least one fill")
    v1_fills = [f for f in fills if isinstance(f, V1Fill)]
    if len(v1_fills) == len(fills):
        contract = _contract(rpc_url, emitter, "V1FillEmitter")
        return _transact(rpc_url, contract.functions.emitFills([_v1_tuple(f, emitter) for f in v1_fills]), sender)
    v2_fills = [f for f in fills if isinstance(f, V2Fill)]
    if len(v2_fills) == len(fills):
        contract = _contract(rpc_url, emitter, "V2FillEmitter")
        return _transact(rpc_url, contract.functions.emitFills([_v2_tuple(f, emitter) for f in v2_fills]), sender)
    raise TypeError("emit_batch takes fills of one kind: all V1Fill or all V2Fill")


def emit_raw(rpc_url: str, emitter: str, logs: Sequence[RawLog], *, sender: str | None = None):
    """Exactly these logs, in order, in ONE transaction, from `emitter` (either emitter). Returns the receipt."""
    contract = _contract(rpc_url, emitter, "V2FillEmitter")  # emitRaw is the same function on both
    args = []
    for log in logs:
        if len(log.topics) > 4:
            raise ValueError(f"a log has at most 4 topics, not {len(log.topics)}")
        args.append(([_b32(t) for t in log.topics], _bytes(log.data)))
    return _transact(rpc_url, contract.functions.emitRaw(args), sender)


def v1_log(fill: V1Fill, emitter: str) -> RawLog:
    """The log V1FillEmitter.emitFill would emit for `fill`, for mixing into an `emit_raw` transaction."""
    order_hash, maker, taker, *data = _v1_tuple(fill, emitter)
    return RawLog((V1_ORDER_FILLED_TOPIC0, order_hash, _b32(maker), _b32(taker)), encode(list(V1_DATA_TYPES), data))


def v2_log(fill: V2Fill, emitter: str) -> RawLog:
    """The log V2FillEmitter.emitFill would emit for `fill`, for mixing into an `emit_raw` transaction."""
    order_hash, maker, taker, *data = _v2_tuple(fill, emitter)
    return RawLog((V2_ORDER_FILLED_TOPIC0, order_hash, _b32(maker), _b32(taker)), encode(list(V2_DATA_TYPES), data))
