"""decide snapshots: exact JSON round trips, and snapshot + tail == the whole history over random histories."""

from __future__ import annotations

import json
from collections import Counter, deque

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from horus.domain.decide import Booked, DecideState, FollowerBook, Position, Reservation, decide
from horus.domain.decide_snapshot import (
    SnapshotInvalid,
    SnapshotPlace,
    book_from_json,
    book_to_json,
    decode_books,
    encode_books,
    forget_before_window,
    mac_key,
    open_sealed,
    recent_of,
    seal,
    snapshot_book,
)
from tests.unit.test_decide import (
    FOLLOWER,
    LEADER,
    NOW,
    TOKEN,
    TOKEN2,
    candidate,
    history_view,
    rebuild,
    run_history,
    step,
    view,
)


def fields(book: FollowerBook) -> dict:
    """Everything a book holds, comparable (Counters compare missing and zero entries as equal)."""
    return {
        "decided": book.decided,
        "booked": book.booked,
        "reservations": book.reservations,
        "positions": book.positions,
        "leader_holdings": book.leader_holdings,
        "spend": book.spend,
        "fills_after": list(book.fills_after),
        "reserved_cost": book.reserved_cost,
        "exposure": book._exposure,
        "selling": book._selling,
        "buying": book._buying,
    }


def recent_decisions(timeline, since_us: int) -> list[tuple[str, int, str | None]]:
    return [
        (d["candidate_id"], d["envelope"]["produced_at_us"], d["intent_id"])
        for kind, d, *_ in timeline
        if kind == "decision" and d["envelope"]["produced_at_us"] >= since_us
    ]


def through_storage(books: dict[str, tuple[FollowerBook, list]]) -> dict[str, FollowerBook]:
    """What a rebuild reads back: the bytes written, decoded and parsed."""
    return {follower: book_from_json(data, follower) for follower, data in decode_books(encode_books(books)).items()}


# ------------------------------------------------------------------------------------------ round trips


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(step, min_size=1, max_size=60), st.sampled_from(["0.01", "0.001"]), st.integers(0, 80))
def test_a_snapshot_reads_back_exactly(steps, tick, keep):
    state, timeline = run_history(steps, tick)
    book = state.books.get(FOLLOWER)
    if book is None:
        return
    recent = recent_decisions(timeline, NOW)[-keep:] if keep else []
    kept = snapshot_book(book, recent)
    data = json.loads(json.dumps(book_to_json(kept, recent)))
    assert fields(book_from_json(data)) == fields(kept)
    assert recent_of(data) == recent
    assert fields(through_storage({FOLLOWER: (kept, recent)})[FOLLOWER]) == fields(kept)
    # the copy drops only what a snapshot may drop, and is independent of the live book
    expected = fields(book) | {
        "decided": {c for c, _, _ in recent},
        # a provisional fill stays booked until it is confirmed or corrected, however old its decision
        "booked": {i: b for i, b in book.booked.items() if i in {i for _, _, i in recent if i} or not b.final},
    }
    assert fields(kept) == expected
    for position in book.positions.values():
        position.shares_e6 += 1
    assert all(p.shares_e6 + 1 == book.positions[k].shares_e6 for k, p in kept.positions.items())


def test_every_field_is_spelled_out_with_integers_and_strings_only():
    book = FollowerBook()
    book.reserve("i1", Reservation("f1", LEADER, TOKEN, "0xc", "BUY", 19_000_000, 9_690_000, 20_833))
    book.reserve("i2", Reservation("f1", LEADER, TOKEN2, "0xd", "SELL", 5_000_000, 0, 20_833))
    book.positions[(TOKEN2, LEADER)] = Position(7_000_000, 3_500_000, "0xd")
    book.leader_holdings[("f1", TOKEN)] = 20_000_000
    book.add_spend(20_833, "f1", 9_690_000)
    book.fills_after.append((NOW, 3_500_000))
    sold = Reservation("f1", LEADER, TOKEN2, "0xd", "SELL", 2_000_000, 0, 20_832)
    book.booked.update({"i0": Booked(sold, 2_000_000, 1_000_000), "old": Booked(sold)})
    recent = [("c1", NOW, "i1"), ("c0", NOW - 1, "i0"), ("c2", NOW, None)]
    data = book_to_json(book, recent)
    assert data["exposure"] == [["0xc", None, 9_690_000], ["0xc", LEADER, 9_690_000]]
    assert data["selling"] == [[TOKEN2, None, 5_000_000], [TOKEN2, LEADER, 5_000_000]]
    # "old" is not an intent of the window; "i0" keeps what its result booked
    assert data["booked"] == [
        ["i0", "f1", LEADER, TOKEN2, "0xd", "SELL", 2_000_000, 0, 20_832, 2_000_000, 1_000_000, 1, 0]
    ]
    text = json.dumps(data)
    assert "." not in text.replace(TOKEN, "").replace(TOKEN2, "")  # no floats anywhere

    def atoms(value):
        if isinstance(value, (list, dict)):
            for v in value.values() if isinstance(value, dict) else value:
                yield from atoms(v)
        else:
            yield value

    assert all(type(a) in (int, str, type(None)) for a in atoms(data))


@pytest.mark.parametrize(
    "change, field",
    [
        (lambda d: d.update(reserved_cost=1.5), "book.reserved_cost"),
        (lambda d: d.update(reserved_cost=True), "book.reserved_cost"),
        (lambda d: d["spend"].append([20833, "f1", "12"]), "book.spend"),
        (lambda d: d["positions"].append([TOKEN, LEADER, 1]), "book.positions"),
        (lambda d: d.pop("buying"), "book.buying"),
        (lambda d: d["recent"].append([1, NOW, None]), "book.recent"),
    ],
)
def test_a_damaged_book_is_refused_naming_the_field(change, field):
    data = book_to_json(FollowerBook(), [("c1", NOW, None)])
    data["spend"] = [[20833, "f1", 5]]
    change(data)
    with pytest.raises(SnapshotInvalid, match=field):
        book_from_json(data)


@pytest.mark.parametrize(
    "change, field",
    [
        (lambda d: d.update(reserved_cost=-1), "book.reserved_cost"),
        (lambda d: d["spend"].append([20833, "*", -10_000_000]), "book.spend"),
        (
            lambda d: d["reservations"].append(["i9", "f1", LEADER, TOKEN, "0xc", "BUY", 5, -1, 20833]),
            "book.reservations",
        ),
        (
            lambda d: d["reservations"].append(["i9", "f1", LEADER, TOKEN, "0xc", "SELL", -5, 0, 20833]),
            "book.reservations",
        ),
        (lambda d: d["positions"].append([TOKEN, LEADER, -1, 0, "0xc"]), "book.positions"),
        (lambda d: d["positions"].append([TOKEN, LEADER, 1, -1, "0xc"]), "book.positions"),
        (lambda d: d["leader_holdings"].append(["f1", TOKEN, -1]), "book.leader_holdings"),
        (lambda d: d["fills_after"].append([NOW, -1]), "book.fills_after"),
        (lambda d: d["selling"].append([TOKEN, None, -1]), "book.selling"),
        (lambda d: d["buying"].append([TOKEN, -1]), "book.buying"),
    ],
)
def test_negative_money_or_shares_are_refused(change, field):
    """A value no fold can produce (they would lift caps or reservations) is refused, naming the field."""
    data = book_to_json(FollowerBook(), [("c1", NOW, None)])
    change(data)
    with pytest.raises(SnapshotInvalid, match=f"{field}.*negative"):
        book_from_json(data)


PLACE = SnapshotPlace(group="horus", topic="copy.decisions", partition=3, decisions_offset=120, results_offset=77)


def test_a_sealed_snapshot_opens_only_with_its_key_in_its_place():
    key = mac_key(b"a configured secret")
    state = encode_books({FOLLOWER: (FollowerBook(reserved_cost=5), [])})
    sealed = seal(state, key, PLACE)
    assert open_sealed(sealed, key, PLACE) == state
    for i in range(len(sealed)):  # any byte flipped, MAC or state
        flipped = bytearray(sealed)
        flipped[i] ^= 0x01
        with pytest.raises(SnapshotInvalid, match="not authentic"):
            open_sealed(bytes(flipped), key, PLACE)
    for moved in (
        PLACE._replace(partition=4),
        PLACE._replace(decisions_offset=119),
        PLACE._replace(results_offset=0),
        PLACE._replace(group="other"),
        PLACE._replace(topic="x.copy.decisions"),
    ):
        with pytest.raises(SnapshotInvalid, match="not authentic"):
            open_sealed(sealed, key, moved)  # another partition's row, or offsets edited
    with pytest.raises(SnapshotInvalid, match="not authentic"):
        open_sealed(sealed, mac_key(b"another secret"), PLACE)
    with pytest.raises(SnapshotInvalid, match="not authentic"):
        open_sealed(sealed[:10], key, PLACE)
    assert mac_key(b"a configured secret") == key and len(key) == 32  # derived, deterministic, not the secret


def test_bytes_that_are_not_a_snapshot_are_refused():
    with pytest.raises(SnapshotInvalid, match="state"):
        decode_books(b"not zlib")
    import zlib

    with pytest.raises(SnapshotInvalid, match="state"):
        decode_books(zlib.compress(b"[1, 2]"))


# ------------------------------------------------------------------------------------------ snapshot + tail


def drive(steps, tick, cut: int, window_us: int):
    """run_history, with results stamped with the time they are folded (as a rebuild reads them), and the
    live book snapshotted (through storage) before step `cut`."""
    v, snapshot = history_view(tick), []

    def snap(i, now, state, timeline):
        if i == cut:
            book = state.books.get(FOLLOWER)
            recent = recent_decisions(timeline, now - window_us)
            stored = through_storage({FOLLOWER: (snapshot_book(book, recent), recent)}) if book else {}
            snapshot.append((stored, len(timeline), recent))

    state, timeline = run_history(steps, tick, v, before_step=snap, stamp_results=True)
    return state, timeline, snapshot[0], v


E6 = 1_000_000
more_fills = st.lists(
    st.tuples(
        st.sampled_from(["BUY", "SELL"]),
        st.sampled_from([TOKEN, TOKEN2]),
        st.sampled_from(["0.27", "0.5", "0.731"]),
        st.integers(1, 400),
    ),
    max_size=12,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(step, min_size=1, max_size=80),
    st.sampled_from(["0.01", "0.001"]),
    st.data(),
    more_fills,
    st.sampled_from([0, 5_000, 10**12]),
)
def test_snapshot_plus_the_rest_is_the_whole_history_and_decides_the_same(steps, tick, data, more, window_us):
    cut = data.draw(st.integers(0, len(steps)), label="cut")
    _, timeline, (stored, at, recent), v = drive(steps, tick, cut, window_us)
    whole = rebuild(DecideState(), timeline)
    resumed = rebuild(DecideState(books=dict(stored)), timeline[at:])
    if FOLLOWER not in whole.books:
        assert FOLLOWER not in resumed.books
        return
    full, book = fields(whole.books[FOLLOWER]), fields(resumed.books[FOLLOWER])
    # equal except `decided` (and `booked`), which hold the window and everything after the cut
    assert {k: v for k, v in book.items() if k not in ("decided", "booked")} == {
        k: v for k, v in full.items() if k not in ("decided", "booked")
    }
    after = {d["candidate_id"] for kind, d, *_ in timeline[at:] if kind == "decision"}
    assert after | {c for c, _, _ in recent} == book["decided"] <= full["decided"]
    assert book["booked"].items() <= full["booked"].items()
    # ... so the next decisions are the same, and a candidate redelivered from the window or after the cut
    # gets none on either state
    end = NOW + (len(steps) + 1) * 1000
    redelivered = [e[-1] for e in timeline if e[0] == "decision" and e[1]["candidate_id"] in book["decided"]][-3:]
    fresh = [
        candidate(side=side, price=price, shares=shares * E6 // 4, token=token, age_us=1000, tx=f"0x{10**6 + i:064x}")
        for i, (side, token, price, shares) in enumerate(more)
    ]
    # a live stage trims its own book the same way when it snapshots (memory bounded by the window)
    trimmed = rebuild(DecideState(), timeline)
    forget_before_window(
        trimmed.books[FOLLOWER],
        recent + [(d["candidate_id"], 0, d["intent_id"]) for kind, d, *_ in timeline[at:] if kind == "decision"],
    )
    assert trimmed.books[FOLLOWER].decided == book["decided"]
    for i, c in enumerate(redelivered + fresh):
        out_whole, _ = decide(c, whole, now_us=end + i, view=v)
        out_resumed, _ = decide(c, resumed, now_us=end + i, view=v)
        out_trimmed, _ = decide(c, trimmed, now_us=end + i, view=v)
        assert out_whole == out_resumed == out_trimmed
        assert (out_whole == []) == (c in redelivered)
    assert fields(resumed.books[FOLLOWER]) | {"decided": None, "booked": None} == fields(whole.books[FOLLOWER]) | {
        "decided": None,
        "booked": None,
    }


def test_a_candidate_older_than_the_window_can_only_be_skipped():
    """Why the window may drop an id: when its candidate comes again later than every follow's max_fill_age_s,
    deciding it again gives a SKIP, which reserves and spends nothing."""
    v = view({"max_fill_age_s": 60})
    state = DecideState()
    c = candidate(age_us=1_000_000)
    first, _ = decide(c, state, now_us=NOW, view=v)
    assert first[0]["action"] == "COPY"
    window_us = (60 + 60) * E6  # what DecideStage keeps: max_fill_age_s + 60 s
    later = NOW + window_us
    recent = [e for e in recent_decisions([("decision", first[0])], later - window_us)]
    assert recent == [(first[0]["candidate_id"], NOW, first[0]["intent_id"])]  # still kept at the edge
    dropped = through_storage({FOLLOWER: (snapshot_book(state.books[FOLLOWER], []), [])})
    again, after = decide(c, DecideState(books=dropped), now_us=later + 1, view=v)
    assert again[0]["reason_code"] == "FILL_TOO_OLD"
    book = after.books[FOLLOWER]
    assert book.reservations == state.books[FOLLOWER].reservations and book.spend == state.books[FOLLOWER].spend


def test_a_book_without_history_and_counters_after_releases_stay_small():
    state, _ = run_history([("fill", "BUY", TOKEN, "0.5", 40), ("result", 0, "NOT_FILLED", "0")], "0.01")
    book = state.books[FOLLOWER]
    assert book._buying == Counter({TOKEN: 0}) and not book.reservations
    data = book_to_json(snapshot_book(book))
    assert data["buying"] == [] and data["exposure"] == [] and data["recent"] == []
    assert fields(book_from_json(data)) | {"decided": None, "booked": None} == fields(book) | {
        "decided": None,
        "booked": None,
    }
    assert isinstance(book_from_json(data).fills_after, deque)
