"""`horus fills decode`: logs / receipts in, LeaderFill JSON lines out."""

from __future__ import annotations

import json
import subprocess
import sys

from eth_abi import encode
from typer.testing import CliRunner

from horus.cli.fills import app
from horus.codec import default_codec
from horus.domain.fill_json import leader_fill_from_json
from horus.domain.ids import leader_fill_id
from horus.venue.polymarket.exchanges import CTF_EXCHANGE_V2
from tests.unit.test_venue_fills import (
    ANVIL_EXCHANGE,
    DOC_FEE_CHARGED_V2,
    DOC_ORDERS_MATCHED_V2,
    LEADER,
    OTHER,
    THIRD,
    TOKEN,
    TRANSFER_SINGLE,
    TX,
    TX2,
    _word,
    order_hash,
    other_log,
    v1_log,
    v2_log,
)

runner = CliRunner()

KEYS = [
    "event_id",
    "leader",
    "exchange",
    "tx_hash",
    "block_number",
    "log_index",
    "block_timestamp",
    "token_id",
    "condition_id",
    "side",
    "shares",
    "collateral",
    "price",
    "fee",
    "role",
    "order_hashes",
]


def run(args, input=None):
    return runner.invoke(app, ["decode", *args], input=input)


def lines(result) -> list[dict]:
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def receipt(logs, tx=TX, block=79_000_001) -> dict:
    return {
        "transactionHash": tx,
        "blockNumber": hex(block),
        "status": "0x1",
        "logs": logs,
        "from": "0x" + "11" * 20,
        "to": CTF_EXCHANGE_V2,
        "gasUsed": "0x5208",
    }


def mixed_receipt() -> dict:
    """A real-shaped match: leader's taker BUY against two makers, with the other events a match emits."""
    return receipt(
        [
            other_log(
                TRANSFER_SINGLE,
                index=0,
                topics=[_word(CTF_EXCHANGE_V2), _word(OTHER), _word(LEADER)],
                data=encode(["uint256", "uint256"], [TOKEN, 100_000_000]),
            ),
            v2_log(
                maker=OTHER, taker=LEADER, side=1, maker_amount=100_000_000, taker_amount=60_000_000, index=1, order=10
            ),
            other_log(DOC_FEE_CHARGED_V2, index=2, topics=[_word(CTF_EXCHANGE_V2)], data=encode(["uint256"], [5])),
            v2_log(
                maker=THIRD, taker=LEADER, side=1, maker_amount=50_000_000, taker_amount=31_000_000, index=3, order=11
            ),
            v2_log(
                maker=LEADER,
                taker=CTF_EXCHANGE_V2,
                side=0,
                maker_amount=91_000_000,
                taker_amount=150_000_000,
                fee=1_500_000,
                index=4,
                order=1,
            ),
            other_log(
                DOC_ORDERS_MATCHED_V2,
                index=5,
                topics=[order_hash(1), _word(LEADER)],
                data=encode(["uint8", "uint256", "uint256", "uint256"], [0, TOKEN, 91_000_000, 150_000_000]),
            ),
            {**other_log("0x" + "00" * 32, index=6), "topics": []},  # anonymous event
        ]
    )


def test_json_list_of_logs_from_a_file(tmp_path):
    path = tmp_path / "logs.json"
    path.write_text(json.dumps([v2_log(timestamp=1_788_886_026), v1_log(tx=TX2, timestamp=1_700_000_000)]))
    result = run([str(path)])
    assert result.exit_code == 0, result.output
    out = lines(result)
    assert [list(o) for o in out] == [KEYS, KEYS]
    v1, v2 = out  # sorted by time
    assert v2 == {
        "event_id": leader_fill_id(TX, LEADER, str(TOKEN), "BUY"),
        "leader": LEADER,
        "exchange": CTF_EXCHANGE_V2,
        "tx_hash": TX,
        "block_number": 79_000_001,
        "log_index": 7,
        "block_timestamp": 1_788_886_026,
        "token_id": str(TOKEN),
        "condition_id": None,
        "side": "BUY",
        "shares": "155.03",
        "collateral": "13.4024",
        "price": "0.0864503644",
        "fee": "0",
        "role": "maker",
        "order_hashes": [order_hash(1)],
    }
    assert (v1["side"], v1["price"], v1["block_timestamp"]) == ("BUY", "0.5", 1_700_000_000)
    assert "2 leader fill(s) from 2 OrderFilled log(s); 0 undecodable" in result.stderr


def test_output_lines_are_replayable_leader_fills(tmp_path):
    path = tmp_path / "logs.json"
    path.write_text(json.dumps([v2_log(timestamp=1_788_886_026)]))
    (line,) = lines(run([str(path)]))
    record = leader_fill_from_json(line)
    codec = default_codec()
    assert codec.decode(codec.encode("LeaderFill", record))[1]["envelope"]["event_id"] == line["event_id"]
    assert record["shares_e6"] == 155_030_000 and record["role"] == "MAKER"


def test_single_receipt_on_stdin_with_other_events_ignored():
    result = run(["-"], input=json.dumps(mixed_receipt()))
    assert result.exit_code == 0, result.output
    out = {o["leader"]: o for o in lines(result)}
    assert set(out) == {LEADER, OTHER, THIRD}
    mine = out[LEADER]
    assert (mine["side"], mine["role"], mine["shares"], mine["collateral"], mine["fee"], mine["price"]) == (
        "BUY",
        "taker",
        "150",
        "91",
        "1.5",
        "0.6066666667",
    )
    assert (out[OTHER]["side"], out[OTHER]["role"], out[OTHER]["price"]) == ("SELL", "maker", "0.6")
    stderr = result.stderr.splitlines()
    assert not any(line.startswith("skipped") for line in stderr)
    assert "3 leader fill(s) from 3 OrderFilled log(s); 0 undecodable, 4 other event(s) ignored" in result.stderr
    assert "without a timestamp" in result.stderr and mine["block_timestamp"] == 0


def test_stdin_is_the_default_and_leader_filter():
    result = runner.invoke(
        app, ["decode", "--leader", LEADER.upper().replace("0X", "0x")], input=json.dumps(mixed_receipt())
    )
    assert result.exit_code == 0, result.output
    assert [o["leader"] for o in lines(result)] == [LEADER]


def test_list_of_receipts_json_lines_and_json_rpc_responses():
    r1, r2 = mixed_receipt(), receipt([v2_log(tx=TX2, index=0)], tx=TX2)
    for text in (
        json.dumps([r1, r2]),
        json.dumps(r1) + "\n\n" + json.dumps(r2) + "\n",
        "\n".join(json.dumps(log) for log in [*r1["logs"], *r2["logs"]]),
        json.dumps({"jsonrpc": "2.0", "id": 1, "result": r1["logs"] + r2["logs"]}),
        json.dumps([{"jsonrpc": "2.0", "id": 1, "result": r1}, {"jsonrpc": "2.0", "id": 2, "result": r2}]),
    ):
        result = run([], input=text)
        assert result.exit_code == 0, result.output
        assert len(lines(result)) == 4, text[:100]


def test_undecodable_logs_are_reported_and_the_rest_printed():
    short = v2_log(tx=TX2, index=1)
    short["data"] = short["data"][:-64]
    logs = [v2_log(), v2_log(exchange=ANVIL_EXCHANGE, index=2, tx=TX2), short, {"no": "topics"}, 7]
    result = run([], input=json.dumps(logs))
    assert result.exit_code == 0, result.output
    assert len(lines(result)) == 1
    skipped = [line for line in result.stderr.splitlines() if line.startswith("skipped")]
    assert len(skipped) == 4
    text = "\n".join(skipped)
    assert f"{ANVIL_EXCHANGE}, which is not a known exchange" in text and "[unknown-exchange]" in text
    assert "must be 224 bytes, got 192" in text and "[bad-data]" in text
    assert "neither a log" in text and "expected a log or a receipt object, got int" in text
    assert "1 leader fill(s) from 1 OrderFilled log(s); 4 undecodable" in result.stderr


def test_extra_exchange_addresses_decode_anvil_contracts():
    logs = [v2_log(exchange=ANVIL_EXCHANGE, taker=ANVIL_EXCHANGE), v1_log(exchange=ANVIL_EXCHANGE, tx=TX2)]
    result = run(["--exchange", ANVIL_EXCHANGE.upper().replace("0X", "0x")], input=json.dumps(logs))
    assert result.exit_code == 0, result.output
    out = lines(result)
    assert {o["exchange"] for o in out} == {ANVIL_EXCHANGE}
    assert sorted(o["role"] for o in out) == ["maker", "taker"]


def test_removed_logs_are_skipped_and_counted():
    result = run([], input=json.dumps([v2_log(removed=True), v2_log(tx=TX2)]))
    assert result.exit_code == 0 and len(lines(result)) == 1
    assert "1 removed log(s) skipped" in result.stderr


def test_unreadable_input_exits_1():
    for text in ("{not json", '{"a": 1}\n{broken\n', "\xff[", "[" + "1" * 5000 + "]"):
        result = run([], input=text)
        assert result.exit_code == 1, text
        assert "error:" in result.stderr and result.stdout == ""


def test_missing_file_exits_1(tmp_path):
    result = run([str(tmp_path / "nope.json")])
    assert result.exit_code == 1 and "cannot read" in result.stderr


def test_empty_input_and_no_fills_exit_0():
    for text in ("", "[]", json.dumps(receipt([other_log(TRANSFER_SINGLE)]))):
        result = run([], input=text)
        assert result.exit_code == 0 and result.stdout == ""
        assert "0 leader fill(s)" in result.stderr


def test_bad_exchange_address_is_a_usage_error():
    result = run(["--exchange", "0x1234"], input="[]")
    assert result.exit_code == 2


def test_as_a_process_reading_stdin():
    code = "import sys; from horus.cli.fills import app; sys.argv[0] = 'horus-fills'; app()"
    proc = subprocess.run(
        [sys.executable, "-c", code, "decode", "-"],
        input=json.dumps(mixed_receipt()),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert len([line for line in proc.stdout.splitlines() if line]) == 3
    assert "3 leader fill(s)" in proc.stderr
