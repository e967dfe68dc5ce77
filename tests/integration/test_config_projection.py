"""Config and control commands against the real broker and database: the CLI writes config.changes /
control.commands, the projections fold them (latest change per key wins), replay rebuilds the same tables."""

from __future__ import annotations

import base64
import json

import psycopg
import pytest
from eth_account import Account
from typer.testing import CliRunner

from horus.cli.main import app
from horus.codec import default_codec
from horus.credentials import CredentialStore
from horus.db.engine import psycopg_conninfo
from horus.domain.config import config_change
from horus.kafka.client import (
    assign_from_beginning,
    end_offsets,
    flush_or_raise,
    make_consumer,
    make_producer,
    poll_batch,
    produce_reliably,
)
from horus.settings import Settings
from projections.folds import CONFIG_CHANGES_PROJECTION, CONTROL_COMMANDS_PROJECTION
from projections.replay import replay_all, table_checksums
from projections.runner import run_projections

pytestmark = pytest.mark.integration

FOLLOWER = "0x" + "1" * 40
LEADER = "0x" + "a" * 40
PRIVATE_KEY = "0x" + "6d" * 31 + "02"
API_KEY = "4a1c2d3e-aaaa-bbbb-cccc-0123456789ab"
API_SECRET = base64.urlsafe_b64encode(b"hmac-secret-of-the-follower-9876").decode()
PASSPHRASE = "passphrase-of-the-follower-0042"
SECRET_STRINGS = (PRIVATE_KEY[2:], API_SECRET, PASSPHRASE, API_KEY)
CONFIG_TABLES = ["follower_configs", "follow_configs", "control_switches", "dead_letters"]


def cli(s: Settings, *args: str):
    return CliRunner().invoke(app, list(args), env=s.as_env())


def fold(s: Settings, batch_size: int = 1000) -> None:
    run_projections(
        s,
        until_caught_up=True,
        batch_size=batch_size,
        projections=(CONFIG_CHANGES_PROJECTION, CONTROL_COMMANDS_PROJECTION),
    )


def rows(s: Settings, query: str, params=()) -> list[tuple]:
    with psycopg.connect(psycopg_conninfo(s.database_url), autocommit=True) as conn:
        return conn.execute(query, params).fetchall()


def raw_messages(s: Settings, topic: str) -> list[bytes]:
    consumer = make_consumer(s, None)
    try:
        name = s.topic(topic)
        pending = {p: end for p, end in end_offsets(consumer, name).items() if end > 0}
        assign_from_beginning(consumer, [name])
        out = []
        while pending:
            for m in poll_batch(consumer, 500, 0.5):
                out.append(m.value() or b"")
                if m.offset() + 1 >= pending.get(m.partition(), 0):
                    pending.pop(m.partition(), None)
        return out
    finally:
        consumer.close()


def flat(text: str) -> str:
    return " ".join(text.split())


def test_follow_add_update_remove_and_list(s):
    added = cli(
        s,
        "follow",
        "add",
        "--leader",
        LEADER,
        "--follower",
        FOLLOWER,
        "--amount",
        "10",
        "--daily-cap",
        "50",
        "--allow",
        "tag:nba",
        "--json",
    )
    assert added.exit_code == 0, added.output
    follow_id = json.loads(added.stdout)["id"].split()[-1]
    assert follow_id == "0x11111111-0xaaaaaaaa"
    again = cli(s, "follow", "add", "--leader", LEADER, "--follower", FOLLOWER, "--amount", "10")
    assert again.exit_code == 1 and "already exists" in flat(again.output)

    # the projection is not running yet: update reads the current config from the topic itself
    updated = cli(
        s, "follow", "update", follow_id, "--slippage-bps", "300", "--sizing", "ratio", "--ratio", "0.5", "--json"
    )
    assert updated.exit_code == 0, updated.output
    config = json.loads(updated.stdout)["config"]
    assert config["slippage_bps"] == 300 and config["daily_cap"] == "50" and config["markets_allow"] == ["tag:nba"]
    assert config["sizing"] == {**config["sizing"], "mode": "ratio", "ratio": "0.5", "amount": "10"}

    fold(s)
    (row,) = rows(
        s, "SELECT follower, leader, enabled, deleted, body FROM follow_configs WHERE follow_id = %s", (follow_id,)
    )
    assert row[:4] == (FOLLOWER, LEADER, True, False) and row[4] == config

    # caught up now: update merges into the projected config
    disabled = cli(s, "follow", "update", follow_id, "--disable", "--deny", "category:crypto", "--json")
    assert disabled.exit_code == 0, disabled.output
    assert json.loads(disabled.stdout)["config"]["slippage_bps"] == 300
    fold(s)
    listed = cli(s, "follow", "list", "--follower", FOLLOWER, "--json")
    (entry,) = [json.loads(line) for line in listed.stdout.splitlines()]
    assert entry["enabled"] is False and entry["body"]["markets_deny"] == ["category:crypto"]
    assert entry["body"]["sizing"]["ratio"] == "0.5"
    table = cli(s, "follow", "list", "--leader", LEADER)
    assert table.exit_code == 0 and follow_id in table.stdout and "ratio x0.5" in table.stdout

    bad = cli(s, "follow", "update", follow_id, "--price-min", "2")
    assert bad.exit_code == 2 and "price_min" in flat(bad.output)

    removed = cli(s, "follow", "remove", follow_id)
    assert removed.exit_code == 0, removed.output
    fold(s)
    assert rows(s, "SELECT deleted, body, follower FROM follow_configs WHERE follow_id = %s", (follow_id,)) == [
        (True, None, None)
    ]
    assert cli(s, "follow", "list", "--json").stdout.strip() == ""
    assert follow_id in cli(s, "follow", "list", "--removed", "--json").stdout
    gone = cli(s, "follow", "update", follow_id, "--amount", "3")
    assert gone.exit_code == 1 and f"no follow {follow_id}" in flat(gone.output)
    # a DELETE is a change, not a tombstone: compaction keeps it
    assert all(raw for raw in raw_messages(s, "config.changes"))


def test_follower_with_credentials_keeps_secrets_out_of_events_and_output(s, tmp_path):
    s = s.model_copy(update={"venue_mode": "dry-run"})  # stored as given (paper derives the paper venue's API creds)
    signer = Account.from_key(PRIVATE_KEY).address.lower()
    creds = tmp_path / "creds.json"
    creds.write_text(
        json.dumps(
            {"private_key": PRIVATE_KEY, "api_key": API_KEY, "api_secret": API_SECRET, "api_passphrase": PASSPHRASE}
        )
    )
    wrong = cli(s, "follower", "add", FOLLOWER, "--credentials-file", str(creds))
    assert wrong.exit_code == 2 and f"signs as {signer}" in flat(wrong.output)  # type 0: the key must be the follower

    added = cli(s, "follower", "add", signer, "--credentials-file", str(creds), "--daily-cap", "100")
    assert added.exit_code == 0, added.output
    assert CredentialStore(s).get(f"follower-{signer}").signer_address.lower() == signer
    updated = cli(s, "follower", "update", signer, "--max-open-positions", "3", "--json")
    assert updated.exit_code == 0, updated.output
    config = json.loads(updated.stdout)["config"]
    assert config["credentials_ref"] == f"follower-{signer}" and config["daily_cap"] == "100"
    assert config["max_open_positions"] == 3

    fold(s)
    assert rows(
        s,
        "SELECT credentials_ref, deleted, body->>'max_open_positions' FROM follower_configs WHERE follower = %s",
        (signer,),
    ) == [(f"follower-{signer}", False, "3")]
    events = raw_messages(s, "config.changes")
    assert len(events) == 2
    for output in (added.output, updated.output, *(e.decode("latin-1") for e in events)):
        assert not any(secret in output for secret in SECRET_STRINGS)
    removed = cli(s, "follower", "remove", signer)
    assert removed.exit_code == 0
    fold(s)
    assert rows(s, "SELECT deleted FROM follower_configs WHERE follower = %s", (signer,)) == [(True,)]


def test_latest_change_wins_in_any_batch_split_and_replay_rebuilds_the_same_tables(s):
    codec, producer = default_codec(), make_producer(s)
    topic = s.topic("config.changes")

    def send(change):
        produce_reliably(
            producer,
            topic,
            codec.encode("ConfigChange", change),
            key=change["entity_id"] if change["entity"] == "FOLLOW" else "follower:" + change["entity_id"],
        )

    for i in range(5):  # five versions of each follow; the last one must win
        for n in range(3):
            body = json.dumps(
                {"follow_id": f"f{n}", "follower": FOLLOWER, "leader": LEADER, "sizing": {"amount": str(i + 1)}}
            )
            send(config_change("FOLLOW", f"f{n}", body, "test", 1_000_000 * (i + 1)))
    bad = json.dumps({"follow_id": "f9", "follower": FOLLOWER, "leader": LEADER, "sizing": {"mode": "balance_pct"}})
    send(config_change("FOLLOW", "f9", bad, "test", 7))
    flush_or_raise(producer)
    assert cli(s, "pause", "--market", "0xABC", "--reason", "news").exit_code == 0
    assert cli(s, "kill", "--reason", "incident").exit_code == 0
    assert cli(s, "resume", "--market", "0xabc").exit_code == 0

    fold(s, batch_size=1)  # every change in its own transaction: the conflict rule decides
    amounts = rows(
        s, "SELECT follow_id, body->'sizing'->>'amount' FROM follow_configs WHERE invalid IS NULL ORDER BY follow_id"
    )
    assert amounts == [("f0", "5"), ("f1", "5"), ("f2", "5")]
    # a change that breaks a rule is not in force (decide drops it too): the row says which rule, not a dead letter
    assert rows(
        s,
        "SELECT enabled, body, invalid LIKE '%%sizing.balance_pct: required%%' FROM follow_configs "
        "WHERE follow_id = 'f9'",
    ) == [(None, None, True)]
    assert rows(s, "SELECT count(*) FROM dead_letters WHERE source_topic = %s", (topic,)) == [(0,)]
    listed = cli(s, "follow", "list")
    assert listed.exit_code == 0 and "INVALID" in listed.stdout, listed.output
    assert rows(s, "SELECT key, command, active, reason FROM control_switches ORDER BY key") == [
        ("GLOBAL", "KILL", True, "incident"),
        ("MARKET:0xabc", "RESUME", False, None),
    ]
    live = table_checksums(s, CONFIG_TABLES)

    rebuilt = replay_all(s, (CONFIG_CHANGES_PROJECTION, CONTROL_COMMANDS_PROJECTION))  # one batch: DISTINCT ON
    assert {t: rebuilt[t] for t in CONFIG_TABLES} == live
    assert live["follow_configs"].rows == 4


def test_control_status_shows_active_switches(s):
    assert cli(s, "pause", "--follower", FOLLOWER.upper().replace("0X", "0x"), "--reason", "review").exit_code == 0
    assert cli(s, "pause", "--global").exit_code == 0
    status = cli(s, "control", "status", "--json")
    assert status.exit_code == 0, status.output
    active = json.loads(status.stdout)
    assert set(active) == {"GLOBAL", f"FOLLOWER:{FOLLOWER}"}
    assert active[f"FOLLOWER:{FOLLOWER}"]["command"] == "PAUSE" and "review" in active[f"FOLLOWER:{FOLLOWER}"]["reason"]
    assert cli(s, "resume", "--global").exit_code == 0
    assert set(json.loads(cli(s, "control", "status", "--json").stdout)) == {f"FOLLOWER:{FOLLOWER}"}
    table = cli(s, "control", "status")
    assert "FOLLOWER:" in table.stdout and "review" in table.stdout
