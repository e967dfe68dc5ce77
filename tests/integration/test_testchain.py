"""The test chain: real OrderFilled logs through the stack's anvil, read back the two ways a source does.

Nothing is mocked: the emitters are compiled by forge + solc-js, deployed to the running anvil,
and their logs are read with `eth_getLogs` (HTTP) and an `eth_subscribe` logs subscription
(WebSocket). Every field is decoded here with eth_abi, independently of the engine's decoder.
"""

from __future__ import annotations

import asyncio
import os

import pytest
from eth_abi import decode
from eth_utils import keccak, to_checksum_address
from web3 import AsyncWeb3, WebSocketProvider

from horus.ops import testchain as tc

pytestmark = pytest.mark.integration

# shared/platform/polymarket.md section 7
DOCUMENTED_V1_TOPIC0 = "0xd0a08e8c493f9c94f29311604c9de1b4e8c8d4c06bd0c789af57f2d65bfec0f6"
DOCUMENTED_V2_TOPIC0 = "0xd543adfd945773f1a62f74f0ee55a5e3b9b1a28262980ba90b1a89f2ea84d8ee"
V1_CANONICAL = "OrderFilled(bytes32,address,address,uint256,uint256,uint256,uint256,uint256)"
V2_CANONICAL = "OrderFilled(bytes32,address,address,uint8,uint256,uint256,uint256,uint256,bytes32,bytes32)"
ORDERS_MATCHED_V2_TOPIC0 = "0x174b3811690657c217184f89418266767c87e4805d09680c39fc9c031c0cab7c"


def address() -> str:
    return to_checksum_address(os.urandom(20))


def h32() -> bytes:
    return os.urandom(32)


def hx(value) -> str:
    """0x-hex of HexBytes / bytes / hex str, lower case."""
    if isinstance(value, str):
        return value.lower() if value.startswith("0x") else "0x" + value.lower()
    return "0x" + bytes(value).hex()


def pad(addr: str) -> str:
    return "0x" + "00" * 12 + addr[2:].lower()


def topic_address(topic) -> str:
    return to_checksum_address("0x" + hx(topic)[-40:])


def decode_v1(log) -> dict:
    topics = [hx(t) for t in log["topics"]]
    assert len(topics) == 4 and topics[0] == DOCUMENTED_V1_TOPIC0
    data = bytes.fromhex(hx(log["data"])[2:])
    assert len(data) == 5 * 32
    maker_asset, taker_asset, maker_amt, taker_amt, fee = decode(["uint256"] * 5, data)
    return dict(
        order_hash=topics[1],
        maker=topic_address(topics[2]),
        taker=topic_address(topics[3]),
        maker_asset_id=maker_asset,
        taker_asset_id=taker_asset,
        maker_amount_filled=maker_amt,
        taker_amount_filled=taker_amt,
        fee=fee,
    )


def decode_v2(log) -> dict:
    topics = [hx(t) for t in log["topics"]]
    assert len(topics) == 4 and topics[0] == DOCUMENTED_V2_TOPIC0
    data = bytes.fromhex(hx(log["data"])[2:])
    assert len(data) == 7 * 32
    side, token, maker_amt, taker_amt, fee, builder, metadata = decode(
        ["uint8", "uint256", "uint256", "uint256", "uint256", "bytes32", "bytes32"], data
    )
    return dict(
        order_hash=topics[1],
        maker=topic_address(topics[2]),
        taker=topic_address(topics[3]),
        side=side,
        token_id=token,
        maker_amount_filled=maker_amt,
        taker_amount_filled=taker_amt,
        fee=fee,
        builder=hx(builder),
        metadata=hx(metadata),
    )


def expected_v1(fill: tc.V1Fill, emitter: str) -> dict:
    return dict(
        order_hash=hx(fill.order_hash),
        maker=to_checksum_address(fill.maker),
        taker=to_checksum_address(fill.taker or emitter),
        maker_asset_id=fill.maker_asset_id,
        taker_asset_id=fill.taker_asset_id,
        maker_amount_filled=fill.maker_amount_filled,
        taker_amount_filled=fill.taker_amount_filled,
        fee=fill.fee,
    )


def expected_v2(fill: tc.V2Fill, emitter: str) -> dict:
    return dict(
        order_hash=hx(fill.order_hash),
        maker=to_checksum_address(fill.maker),
        taker=to_checksum_address(fill.taker or emitter),
        side=fill.side,
        token_id=fill.token_id,
        maker_amount_filled=fill.maker_amount_filled,
        taker_amount_filled=fill.taker_amount_filled,
        fee=fill.fee,
        builder=hx(fill.builder),
        metadata=hx(fill.metadata),
    )


def v2_fill(maker: str, **overrides) -> tc.V2Fill:
    fields = dict(
        order_hash=h32(),
        maker=maker,
        taker=address(),
        side=0,
        token_id=int.from_bytes(os.urandom(32)),
        maker_amount_filled=5_000_000,
        taker_amount_filled=10_000_000,
        fee=12_345,
        builder=h32(),
        metadata=h32(),
    )
    return tc.V2Fill(**{**fields, **overrides})


def v1_fill(maker: str, **overrides) -> tc.V1Fill:
    fields = dict(
        order_hash=h32(),
        maker=maker,
        taker=address(),
        maker_asset_id=0,
        taker_asset_id=int.from_bytes(os.urandom(32)),
        maker_amount_filled=2**256 - 1,
        taker_amount_filled=7_000_000,
        fee=3,
    )
    return tc.V1Fill(**{**fields, **overrides})


def get_logs(rpc_url: str, emitter: str, topics: list) -> list:
    return tc.web3_for(rpc_url).eth.get_logs(
        {"fromBlock": 0, "toBlock": "latest", "address": emitter, "topics": topics}
    )


@pytest.fixture(scope="module")
def chain(stack_settings):
    rpc_url = stack_settings.eth_rpc_url
    emitters = tc.deploy_emitters(rpc_url, cache_dir=stack_settings.cache_dir)
    return rpc_url, emitters


def test_topic0_is_the_real_exchanges_one(chain):
    rpc_url, (v1, v2) = chain
    assert "0x" + keccak(text=V1_CANONICAL).hex() == DOCUMENTED_V1_TOPIC0 == tc.V1_ORDER_FILLED_TOPIC0
    assert "0x" + keccak(text=V2_CANONICAL).hex() == DOCUMENTED_V2_TOPIC0 == tc.V2_ORDER_FILLED_TOPIC0
    r1 = tc.emit_v1(rpc_url, v1, v1_fill(address()))
    r2 = tc.emit_v2(rpc_url, v2, v2_fill(address()))
    assert [hx(t) for t in r1["logs"][0]["topics"]][0] == DOCUMENTED_V1_TOPIC0
    assert [hx(t) for t in r2["logs"][0]["topics"]][0] == DOCUMENTED_V2_TOPIC0
    assert r1["logs"][0]["address"] == v1 and r2["logs"][0]["address"] == v2 and v1 != v2


def test_fills_read_back_by_maker_with_get_logs(chain):
    rpc_url, (v1, v2) = chain
    leader, other = address(), address()
    buy = v2_fill(leader)  # leader's resting order was filled
    sell = v2_fill(leader, side=1, taker=None, fee=0, builder=b"\0" * 32)  # leader took: taker = the exchange
    noise = v2_fill(other)
    old = v1_fill(leader)
    old_sell = v1_fill(leader, maker_asset_id=123, taker_asset_id=0, taker=None)
    receipts = [tc.emit_v2(rpc_url, v2, f) for f in (buy, sell, noise)] + [
        tc.emit_v1(rpc_url, v1, f) for f in (old, old_sell)
    ]
    assert all(len(r["logs"]) == 1 for r in receipts)

    logs = get_logs(rpc_url, v2, [DOCUMENTED_V2_TOPIC0, None, pad(leader)])
    assert [decode_v2(log) for log in logs] == [expected_v2(buy, v2), expected_v2(sell, v2)]
    assert decode_v2(logs[1])["taker"] == v2  # "role = taker iff topic3 == log.address"
    assert [hx(log["transactionHash"]) for log in logs] == [hx(r["transactionHash"]) for r in receipts[:2]]

    logs = get_logs(rpc_url, v1, [DOCUMENTED_V1_TOPIC0, None, pad(leader)])
    assert [decode_v1(log) for log in logs] == [expected_v1(old, v1), expected_v1(old_sell, v1)]
    assert decode_v1(logs[0])["maker_amount_filled"] == 2**256 - 1  # full uint256 range survives

    # the V1 event is not visible under the V2 topic0 and vice versa
    assert get_logs(rpc_url, v1, [DOCUMENTED_V2_TOPIC0]) == []
    assert get_logs(rpc_url, v2, [DOCUMENTED_V1_TOPIC0, None, pad(leader)]) == []


def test_batch_is_one_transaction_with_consecutive_logs(chain):
    rpc_url, (v1, v2) = chain
    leader = address()
    token = 777
    fills = [v2_fill(leader, token_id=token, maker_amount_filled=1_000_000 * (i + 1)) for i in range(4)]
    fills.append(v2_fill(leader, token_id=token, side=1, taker=None))
    receipt = tc.emit_batch(rpc_url, v2, fills)
    assert len(receipt["logs"]) == 5
    assert len({hx(log["transactionHash"]) for log in receipt["logs"]}) == 1
    indexes = [log["logIndex"] for log in receipt["logs"]]
    assert indexes == list(range(indexes[0], indexes[0] + 5))
    logs = get_logs(rpc_url, v2, [DOCUMENTED_V2_TOPIC0, None, pad(leader)])
    assert [decode_v2(log) for log in logs] == [expected_v2(f, v2) for f in fills]
    assert {hx(log["transactionHash"]) for log in logs} == {hx(receipt["transactionHash"])}

    old = [v1_fill(leader), v1_fill(leader, maker_asset_id=5, taker_asset_id=0)]
    receipt = tc.emit_batch(rpc_url, v1, old)
    assert [decode_v1(log) for log in receipt["logs"]] == [expected_v1(f, v1) for f in old]
    with pytest.raises(TypeError):
        tc.emit_batch(rpc_url, v1, [old[0], fills[0]])


def test_websocket_subscription_delivers_the_same_logs(chain):
    rpc_url, (v1, v2) = chain
    ws_url = rpc_url.replace("http://", "ws://", 1)
    leader = address()
    single_v2, single_v1 = v2_fill(leader), v1_fill(leader)
    batch = [v2_fill(leader, token_id=9), v2_fill(leader, token_id=9, side=1)]
    unrelated = v2_fill(address())

    async def run():
        async with AsyncWeb3(WebSocketProvider(ws_url)) as w3:
            subscription = await w3.eth.subscribe(
                "logs",
                {"address": [v1, v2], "topics": [[DOCUMENTED_V1_TOPIC0, DOCUMENTED_V2_TOPIC0], None, pad(leader)]},
            )
            receipts = [
                await asyncio.to_thread(tc.emit_v2, rpc_url, v2, unrelated),
                await asyncio.to_thread(tc.emit_v2, rpc_url, v2, single_v2),
                await asyncio.to_thread(tc.emit_v1, rpc_url, v1, single_v1),
                await asyncio.to_thread(tc.emit_batch, rpc_url, v2, batch),
            ]
            received = []

            async def collect():
                async for message in w3.socket.process_subscriptions():
                    assert message["subscription"] == subscription
                    received.append(message["result"])
                    if len(received) == 4:
                        return

            await asyncio.wait_for(collect(), timeout=15)
            await w3.eth.unsubscribe(subscription)
            return receipts, received

    receipts, received = asyncio.run(run())
    expected_logs = [log for r in receipts[1:] for log in r["logs"]]
    key = lambda log: (hx(log["transactionHash"]), log["logIndex"])  # noqa: E731
    assert [key(log) for log in received] == [key(log) for log in expected_logs]
    assert decode_v2(received[0]) == expected_v2(single_v2, v2)
    assert decode_v1(received[1]) == expected_v1(single_v1, v1)
    assert [decode_v2(log) for log in received[2:]] == [expected_v2(f, v2) for f in batch]
    assert hx(received[2]["transactionHash"]) == hx(received[3]["transactionHash"])
    assert all(log["address"] in (v1, v2) and not log["removed"] for log in received)


def test_raw_logs_keep_their_odd_shapes(chain):
    rpc_url, (v1, v2) = chain
    leader = address()
    good = v2_fill(leader)
    words7 = tc.v2_log(good, v2).data
    shapes = [
        tc.RawLog((), b""),  # log0, nothing at all
        tc.RawLog((DOCUMENTED_V2_TOPIC0,), b"\x01\x02\x03"),  # topic0 only, 3 bytes
        tc.RawLog((DOCUMENTED_V2_TOPIC0, h32(), pad(leader)), words7),  # taker topic missing
        tc.RawLog((DOCUMENTED_V2_TOPIC0, h32(), pad(leader), pad(v2)), words7[:-32]),  # 6 words, not 7
        tc.RawLog((DOCUMENTED_V2_TOPIC0, h32(), pad(leader), pad(v2)), words7 + b"\x00" * 5),  # ragged tail
        tc.v2_log(good, v2),  # a well-formed fill
        tc.RawLog((ORDERS_MATCHED_V2_TOPIC0, h32(), pad(leader)), words7[: 4 * 32]),  # what follows a match
    ]
    receipt = tc.emit_raw(rpc_url, v2, shapes)
    assert len({hx(log["transactionHash"]) for log in receipt["logs"]}) == 1
    got = get_logs(rpc_url, v2, [])
    got = [log for log in got if hx(log["transactionHash"]) == hx(receipt["transactionHash"])]
    assert [[hx(t) for t in log["topics"]] for log in got] == [[hx(t) for t in s.topics] for s in shapes]
    assert [hx(log["data"]) for log in got] == [hx(s.data) for s in shapes]
    assert decode_v2(got[5]) == expected_v2(good, v2)

    # a leader filter on topic2 also matches the malformed OrderFilled shapes: a decoder must reject them
    by_leader = get_logs(rpc_url, v2, [DOCUMENTED_V2_TOPIC0, None, pad(leader)])
    assert [len(log["topics"]) for log in by_leader] == [3, 4, 4, 4]
    for bad in by_leader[:3]:
        with pytest.raises(AssertionError):
            decode_v2(bad)

    with pytest.raises(ValueError):
        tc.emit_raw(rpc_url, v2, [tc.RawLog((h32(),) * 5, b"")])


def test_raw_fill_is_byte_identical_to_the_solidity_event(chain):
    rpc_url, (v1, v2) = chain
    f2, f1 = v2_fill(address(), taker=None), v1_fill(address())
    solidity = [tc.emit_v2(rpc_url, v2, f2)["logs"][0], tc.emit_v1(rpc_url, v1, f1)["logs"][0]]
    raw = [
        tc.emit_raw(rpc_url, v2, [tc.v2_log(f2, v2)])["logs"][0],
        tc.emit_raw(rpc_url, v1, [tc.v1_log(f1, v1)])["logs"][0],
    ]
    for a, b in zip(solidity, raw):
        assert a["address"] == b["address"]
        assert [hx(t) for t in a["topics"]] == [hx(t) for t in b["topics"]]
        assert hx(a["data"]) == hx(b["data"])


def test_forge_tests_pass(stack_settings):
    from horus.ops.stack.foundry import run_forge_tests

    result = run_forge_tests(stack_settings.cache_dir)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 failed" in result.stdout and "passed" in result.stdout
