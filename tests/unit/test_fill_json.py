import json
from pathlib import Path

import pytest

from horus.codec import default_codec
from horus.domain.fill_json import FillJsonError, leader_fill_from_json, leader_fill_to_json

DEMO_FILLS = Path(__file__).resolve().parents[2] / "data" / "demo" / "leader_fills.jsonl"


def demo_rows():
    return [json.loads(line) for line in DEMO_FILLS.read_text().splitlines()]


def test_bundled_demo_fills_parse_encode_and_round_trip():
    codec = default_codec()
    for row in demo_rows():
        record = leader_fill_from_json(row)
        name, decoded = codec.decode(codec.encode("LeaderFill", record))
        assert name == "LeaderFill"
        back = leader_fill_to_json(decoded)
        for key in ("event_id", "leader", "tx_hash", "token_id", "side", "shares", "collateral", "price"):
            assert back[key] == row[key], key


def test_amounts_are_exact():
    row = demo_rows()[0] | {"shares": "135.820001", "collateral": "97.790401"}
    record = leader_fill_from_json(row)
    assert record["shares_e6"] == 135_820_001 and record["collateral_e6"] == 97_790_401


@pytest.mark.parametrize(
    "change,message", [({"side": "HOLD"}, "side"), ({"shares": None}, "missing shares"), ({"role": "both"}, "role")]
)
def test_bad_rows_name_the_problem(change, message):
    with pytest.raises(FillJsonError, match=message):
        leader_fill_from_json(demo_rows()[0] | change)


def test_bundled_demo_fills_carry_the_canonical_leader_fill_id():
    from horus.domain.ids import leader_fill_id

    for row in demo_rows():
        assert row["event_id"] == leader_fill_id(row["tx_hash"], row["leader"], row["token_id"], row["side"])


def test_follow_changes_at_one_instant_get_distinct_ids():
    import json

    from horus.domain.config import config_change

    def follow_change(follow: dict, source: str, delete: bool = False) -> dict:
        body = None if delete else json.dumps(follow, sort_keys=True)
        return config_change("FOLLOW", follow["follow_id"], body, source, 0)

    follow = {"follow_id": "f1", "follower": "0x" + "a" * 40, "leader": "0x" + "b" * 40}
    ids = {
        follow_change(follow, "t")["envelope"]["event_id"],
        follow_change(follow | {"enabled": False}, "t")["envelope"]["event_id"],
        follow_change(follow, "t", delete=True)["envelope"]["event_id"],
    }
    assert len(ids) == 3
    assert follow_change(follow, "t")["envelope"]["event_id"] == follow_change(follow, "t")["envelope"]["event_id"]
