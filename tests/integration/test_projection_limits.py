"""The projections against values Postgres refuses for their size: an index entry is at most ~8 KB (~2.7 KB in a
btree), and a hostile record may carry a 50 KB token id or topic name. Postgres reports that as SQLSTATE 54000
(program_limit_exceeded), which psycopg files under OperationalError, the class of "the database is unreachable":
the runner must park the record and go on, not reconnect and retry the same batch forever (found by the
hostile-input volume test, tests/integration/test_hostile_volume.py)."""

from __future__ import annotations

import random
import string
import threading

import psycopg
import pytest

from horus.codec import default_codec
from horus.db.engine import psycopg_conninfo
from horus.kafka.client import flush_or_raise, make_producer, produce_reliably
from projections.runner import run_projections
from tests.unit.test_projection_folds import dead_letter, leader_fill

pytestmark = pytest.mark.integration
STALLED_AFTER_S = 60.0


def huge(n: int) -> str:
    """Random characters: incompressible, so Postgres cannot squeeze them into an index entry."""
    return "".join(random.Random(n).choices(string.ascii_letters + string.digits, k=50_000))


def produce(settings, items: list[tuple[str, bytes, str]]) -> list[tuple[str, int, int]]:
    producer = make_producer(settings)
    where: list = [None] * len(items)
    for i, (topic, value, key) in enumerate(items):

        def placed(err, msg, i=i):
            assert err is None, err
            where[i] = (msg.topic(), msg.partition(), msg.offset())

        produce_reliably(producer, settings.topic(topic), value, key=key, on_delivery=placed)
    flush_or_raise(producer)
    return where


def fold_all(settings):
    """run_projections until caught up, failing (not hanging) when it stalls or raises."""
    stop, outcome = threading.Event(), {}

    def run():
        try:
            outcome["stats"] = run_projections(settings, stop, until_caught_up=True, batch_size=100)
        except BaseException as exc:  # noqa: BLE001 - reported below
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(STALLED_AFTER_S)
    stalled = thread.is_alive()
    stop.set()
    thread.join(30)
    assert "error" not in outcome, f"the projections died: {outcome['error']!r}"
    assert not stalled, f"the projections stalled for {STALLED_AFTER_S:g}s: {outcome.get('stats')}"
    return outcome["stats"]


def rows(settings, query: str, params=()):
    with psycopg.connect(psycopg_conninfo(settings.database_url)) as conn:
        return conn.execute(query, params).fetchall()


def test_a_value_too_large_for_its_index_is_parked_and_the_projections_go_on(s):  # noqa: F811
    codec = default_codec()
    hostile = codec.encode("LeaderFill", leader_fill(5, token_id=huge(5)))
    items = [("leader.fills", codec.encode("LeaderFill", leader_fill(i)), "k") for i in range(5)]
    items += [("leader.fills", hostile, "k")]
    items += [("leader.fills", codec.encode("LeaderFill", leader_fill(i)), "k") for i in range(6, 10)]
    where = produce(s, items)

    stats = fold_all(s)

    assert stats.dead_letters == 1
    assert rows(s, "SELECT count(*) FROM leader_fills")[0][0] == 9
    ((original, error, stage),) = rows(
        s,
        "SELECT original, error, stage FROM dead_letters WHERE source_topic = %s"
        " AND source_partition = %s AND source_offset = %s",
        where[5],
    )
    assert bytes(original) == hostile and stage == "projections" and "rejected by the database" in error


def test_a_forged_dead_letter_the_database_refuses_is_parked_whatever_stage_it_claims(s):  # noqa: F811
    """A DeadLetter event naming stage "projections" is still an event off the topic, not a row the runner
    parked itself: refused by the database, it is parked like any other, and the runner lives."""
    codec = default_codec()
    forged = codec.encode("DeadLetter", dead_letter(1, source_topic=huge(1), stage="projections"))
    real = codec.encode("DeadLetter", dead_letter(2, source_topic=s.topic("leader.fills")))
    where = produce(s, [("dead.letters", forged, "x"), ("dead.letters", real, "x")])

    stats = fold_all(s)

    assert stats.dead_letters == 1
    ((original, error, stage),) = rows(
        s,
        "SELECT original, error, stage FROM dead_letters WHERE source_topic = %s"
        " AND source_partition = %s AND source_offset = %s",
        where[0],
    )
    assert bytes(original) == forged and stage == "projections" and "rejected by the database" in error
    assert rows(
        s, "SELECT stage FROM dead_letters WHERE source_topic = %s AND source_offset = 2", (s.topic("leader.fills"),)
    ) == [("plan",)]
