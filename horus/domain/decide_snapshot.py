"""Snapshots of decide's per-follower books, so a partition's state is restored instead of refolded.

A snapshot is exact: a `FollowerBook` becomes JSON of ints, strings and nulls only (no floats; tuple keys
spelled out as lists), and `book_from_json` gives back an equal book. Two sets are NOT copied whole, which
is what keeps a snapshot bounded while the history grows forever:

- `decided` (candidate ids with a decision): only the ids of the decisions in `recent` -- those the stage
  made within its dedup window -- are kept. Kafka never redelivers a candidate behind the committed offset,
  but plan is at-least-once: a crashed plan worker produces the same candidate (same id) again at a LATER
  offset, so a recently decided id must still be recognised. A candidate whose first decision is older
  than the window (never less than the largest `max_fill_age_s` configured) can only be a SKIP
  FILL_TOO_OLD again: never a second order, caps or reservation.
- `booked` (intents whose terminal result is folded, with what it booked): those of the `recent` decisions,
  and every one whose result is not final yet (its fills are the venue's match, not settled on chain: the
  executor may still correct it when a trade FAILS). Elsewhere it changes nothing: a result for an intent with
  no open reservation is ignored anyway, and a COPY for an already booked intent needs such a duplicate
  decision. (A final result is corrected only when a writer lost a race with more fills: within seconds.)

The running totals (`reserved_cost`, exposure, open sells and buys) are copied as they are (zero entries
left out), not recomputed: they are what decide compares against caps. `FORMAT` is stored with every
snapshot; a snapshot of another format is not read (the stage folds the whole history instead).

Because decide trusts a restored book's totals against caps, a stored snapshot must be the one decide wrote
(anyone who can write to Postgres could otherwise lift every cap with a negative `spend`):

- It is sealed (`seal`): HMAC-SHA256 over the place it belongs to (`SnapshotPlace`: format, consumer group,
  topic, partition, and the two offsets it covers) and the state bytes, prefixed to the bytes. A byte changed
  anywhere, offsets edited, or a row copied to another partition or group does not open (`open_sealed`). The
  MAC key is derived (`mac_key`, HKDF-SHA256 with its own label) from a configured secret, never written down
  here; the stage takes it from HORUS_SNAPSHOT_KEY or else HORUS_CREDENTIALS_KEY.
- Its values are checked (`book_from_json`): money and shares no fold can make negative (spend, reserved cost,
  reservations, positions, leader holdings, recent fills, open sells and buys) must not be. Exposure is not:
  a sell booked under another condition id than its buy can take one market's sum below zero.

A refused snapshot only costs time: the stage folds the whole history instead.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import zlib
from collections import Counter, deque
from collections.abc import Iterable
from typing import Any, NamedTuple

from horus.domain.decide import Booked, FollowerBook, Position, Reservation

FORMAT = 3  # 3: sealed (MAC + compressed JSON), `booked` keeps what each result booked; older rows are not read
MAC_BYTES = 32
COMPRESS_LEVEL = 1  # bench/decide_rebuild.py: level 6 saves a few % of bytes for ~3x the time

Recent = tuple[str, int, "str | None"]  # (candidate id, decided at (us), intent id of a COPY)


class SnapshotInvalid(ValueError):
    """A snapshot that cannot be read back exactly; the message names the field."""


class SnapshotPlace(NamedTuple):
    """Where a snapshot belongs and what it covers: part of what its MAC authenticates."""

    group: str
    topic: str
    partition: int
    decisions_offset: int
    results_offset: int


def mac_key(secret: bytes) -> bytes:
    """The 32-byte snapshot MAC key from a configured secret (HKDF-SHA256, RFC 5869, one block, own label): the
    secret itself never keys anything else's MAC, and knowing this key reveals nothing of the secret."""
    if not secret:
        raise ValueError("the snapshot secret is empty")
    prk = hmac.new(b"horus decide snapshots", secret, hashlib.sha256).digest()
    return hmac.new(prk, b"horus-decide-snapshot-mac-v1\x01", hashlib.sha256).digest()


def _mac(state: bytes, key: bytes, place: SnapshotPlace) -> bytes:
    context = json.dumps([FORMAT, *place], separators=(",", ":")).encode()
    return hmac.new(key, len(context).to_bytes(4, "big") + context + state, hashlib.sha256).digest()


def seal(state: bytes, key: bytes, place: SnapshotPlace) -> bytes:
    """The bytes to store: the MAC of (place, state), then the state."""
    return _mac(state, key, place) + state


def open_sealed(blob: bytes, key: bytes, place: SnapshotPlace) -> bytes:
    """The state of a sealed snapshot read from `place`; SnapshotInvalid if it is not what was sealed there
    with this key."""
    mac, state = blob[:MAC_BYTES], blob[MAC_BYTES:]
    if len(blob) <= MAC_BYTES or not hmac.compare_digest(mac, _mac(state, key, place)):
        raise SnapshotInvalid(
            "state: not authentic (altered, moved from another partition or group, or written with another key)"
        )
    return state


def snapshot_book(book: FollowerBook, recent: Iterable[Recent] = ()) -> FollowerBook:
    """What a snapshot keeps of `book`, as an independent copy: cheap enough for the stage's thread (no
    JSON), and nothing in it changes when `book` does, so it can be serialised on another thread.
    `recent`: the decisions of the dedup window (see module doc); they become `decided`."""
    recent = list(recent)
    intents = {intent for _, _, intent in recent if intent is not None}
    return FollowerBook(
        decided={candidate for candidate, _, _ in recent},
        booked={
            intent: Booked(_copy(b.reservation), b.shares_e6, b.amount_e6, b.final, b.seq)
            for intent, b in book.booked.items()
            if intent in intents or not b.final
        },
        reservations={intent: _copy(r) for intent, r in book.reservations.items()},
        positions={key: Position(p.shares_e6, p.cost_e6, p.condition_id) for key, p in book.positions.items()},
        leader_holdings=dict(book.leader_holdings),
        spend=dict(book.spend),
        fills_after=deque(book.fills_after),
        reserved_cost=book.reserved_cost,
        _exposure=Counter({key: n for key, n in book._exposure.items() if n}),
        _selling=Counter({key: n for key, n in book._selling.items() if n}),
        _buying=Counter({key: n for key, n in book._buying.items() if n}),
    )


def forget_before_window(book: FollowerBook, recent: Iterable[Recent]) -> None:
    """Trim the live book to what its snapshot keeps of `decided` and `booked` (the dedup window `recent`):
    the state a restore would give, so a long-running stage's memory stops growing with the history."""
    recent = list(recent)
    book.decided.intersection_update([candidate for candidate, _, _ in recent])
    intents = {intent for _, _, intent in recent if intent is not None}
    for intent in [i for i, b in book.booked.items() if i not in intents and b.final]:
        del book.booked[intent]


def book_to_json(book: FollowerBook, recent: Iterable[Recent] = ()) -> dict[str, Any]:
    """The book as exact JSON-ready data, keeping what `snapshot_book` keeps."""
    recent_rows = [[candidate, at, intent] for candidate, at, intent in recent]
    intents = {intent for _, _, intent in recent_rows if intent is not None}
    return {
        "recent": recent_rows,
        "booked": [
            [intent, *_reservation_row(b.reservation), b.shares_e6, b.amount_e6, int(b.final), b.seq]
            for intent, b in sorted(book.booked.items())
            if intent in intents or not b.final
        ],
        "reservations": [[intent, *_reservation_row(r)] for intent, r in book.reservations.items()],
        "positions": [
            [token, leader, p.shares_e6, p.cost_e6, p.condition_id] for (token, leader), p in book.positions.items()
        ],
        "leader_holdings": [[follow, token, n] for (follow, token), n in book.leader_holdings.items()],
        "spend": [[day, scope, n] for (day, scope), n in book.spend.items()],
        "fills_after": [[at, cost] for at, cost in book.fills_after],
        "reserved_cost": book.reserved_cost,
        # keys are a market (token) alone or (market, leader): [market, leader or null, amount]
        "exposure": _split_keys(book._exposure),
        "selling": _split_keys(book._selling),
        "buying": [[token, n] for token, n in book._buying.items() if n],
    }


def book_from_json(data: Any, where: str = "book") -> FollowerBook:
    """The book `book_to_json` wrote; SnapshotInvalid naming the field if `data` is not such a book."""
    if not isinstance(data, dict):
        raise SnapshotInvalid(f"{where}: must be an object")
    rows = {name: _rows(data, name, kinds, where) for name, kinds in _COLUMNS.items()}
    reserved_cost = data.get("reserved_cost")
    if type(reserved_cost) is not int:
        raise SnapshotInvalid(f"{where}.reserved_cost: {reserved_cost!r} is not an integer")
    if reserved_cost < 0:
        raise SnapshotInvalid(f"{where}.reserved_cost: {reserved_cost} is negative")
    for name, columns in _NON_NEGATIVE.items():
        for row in rows[name]:
            for column in columns:
                if row[column] < 0:
                    raise SnapshotInvalid(f"{where}.{name}: {row[column]} is negative")
    return FollowerBook(
        decided={candidate for candidate, _, _ in rows["recent"]},
        booked={
            row[0]: Booked(Reservation(*row[1:9]), row[9], row[10], bool(row[11]), row[12]) for row in rows["booked"]
        },
        reservations={row[0]: Reservation(*row[1:]) for row in rows["reservations"]},
        positions={
            (token, leader): Position(shares, cost, condition)
            for token, leader, shares, cost, condition in rows["positions"]
        },
        leader_holdings={(follow, token): n for follow, token, n in rows["leader_holdings"]},
        spend={(day, scope): n for day, scope, n in rows["spend"]},
        fills_after=deque(map(tuple, rows["fills_after"])),
        reserved_cost=reserved_cost,
        _exposure=_join_keys(rows["exposure"]),
        _selling=_join_keys(rows["selling"]),
        _buying=Counter({token: n for token, n in rows["buying"]}),
    )


def recent_of(data: dict[str, Any]) -> list[Recent]:
    """The dedup window `book_to_json` kept, as (candidate id, decided at, intent id) (data already read
    by book_from_json)."""
    return [(candidate, at, intent) for candidate, at, intent in data["recent"]]


def encode_books(books: dict[str, tuple[FollowerBook, list[Recent]]]) -> bytes:
    """follower -> (book, its dedup window) as the compressed JSON object that is stored. One book at a time,
    so a big partition never holds the GIL for one long json.dumps (zlib releases it while it works)."""
    zipper = zlib.compressobj(COMPRESS_LEVEL)
    parts = [zipper.compress(b"{")]
    for i, (follower, (book, recent)) in enumerate(books.items()):
        entry = (
            f"{',' if i else ''}{json.dumps(follower)}:{json.dumps(book_to_json(book, recent), separators=(',', ':'))}"
        )
        parts.append(zipper.compress(entry.encode()))
    parts.append(zipper.compress(b"}"))
    parts.append(zipper.flush())
    return b"".join(parts)


def decode_books(blob: bytes) -> dict[str, dict[str, Any]]:
    """follower -> book JSON (read each with book_from_json); SnapshotInvalid if the bytes are not a snapshot."""
    try:
        books = json.loads(zlib.decompress(blob))
    except (zlib.error, ValueError) as exc:
        raise SnapshotInvalid(f"state: not compressed JSON ({exc})") from exc
    if not isinstance(books, dict):
        raise SnapshotInvalid("state: must be an object of follower -> book")
    return books


# ------------------------------------------------------------------------------------------------
_INT: frozenset[type] = frozenset({int})
_STR: frozenset[type] = frozenset({str})
_OPT_STR: frozenset[type] = frozenset({str, type(None)})
_COLUMNS = {  # the type of every value in the rows of each list field (bool and float are refused: exact ints)
    "recent": (_STR, _INT, _OPT_STR),
    # intent, its reservation, shares and amount booked, final (0 or 1), the result sequence booked
    "booked": (_STR,) * 6 + (_INT,) * 7,
    "reservations": (_STR,) * 6 + (_INT,) * 3,
    "positions": (_STR, _STR, _INT, _INT, _STR),
    "leader_holdings": (_STR, _STR, _INT),
    "spend": (_INT, _STR, _INT),
    "fills_after": (_INT, _INT),
    "exposure": (_STR, _OPT_STR, _INT),
    "selling": (_STR, _OPT_STR, _INT),
    "buying": (_STR, _INT),
}


# the columns no fold can make negative (exposure can: see the module doc)
_NON_NEGATIVE = {
    "booked": (6, 7, 8, 9, 10, 11, 12),
    "reservations": (6, 7, 8),
    "positions": (2, 3),
    "leader_holdings": (2,),
    "spend": (2,),
    "fills_after": (1,),
    "selling": (2,),
    "buying": (1,),
}


def _copy(r: Reservation) -> Reservation:
    return Reservation(r.follow_id, r.leader, r.token_id, r.condition_id, r.side, r.shares_e6, r.cost_e6, r.day)


def _reservation_row(r: Reservation) -> list[str | int]:
    return [r.follow_id, r.leader, r.token_id, r.condition_id, r.side, r.shares_e6, r.cost_e6, r.day]


def _split_keys(counter: Counter[str | tuple[str, str]]) -> list[list[str | int | None]]:
    return [[key, None, n] if isinstance(key, str) else [key[0], key[1], n] for key, n in counter.items() if n]


def _join_keys(rows: list[list[Any]]) -> Counter[str | tuple[str, str]]:
    return Counter({first if second is None else (first, second): n for first, second, n in rows})


def _rows(data: dict[str, Any], name: str, kinds: tuple[frozenset[type], ...], where: str) -> list[list[Any]]:
    """The field's rows, each checked against `kinds` (one loop, no message built unless one is wrong)."""
    field = f"{where}.{name}"
    rows = data.get(name)
    if not isinstance(rows, list):
        raise SnapshotInvalid(f"{field}: must be a list")
    width = len(kinds)
    for row in rows:
        if type(row) is not list or len(row) != width:
            raise SnapshotInvalid(f"{field}: every entry must be a list of {width} values, not {row!r}")
        for value, allowed in zip(row, kinds):
            if type(value) not in allowed:
                kind = "an integer" if allowed is _INT else "a string"
                raise SnapshotInvalid(f"{field}: {value!r} is not {kind}")
    return rows
