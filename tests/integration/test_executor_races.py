"""Races between two writers of one ledger row (safety review D6), on the real ledger: the executor is driven
directly with a scripted venue, so the interleaving is exact rather than hoped for.

- A lane's POST comes back `matched` after another worker's reconciler recorded the row NOT_FILLED: the fill is
  recorded on top as a correction (the next result sequence), never discarded.
- A lane whose lease lapsed and was taken by another worker does not POST.
"""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

import pytest

from horus.domain.execute import Outcome
from horus.domain.market import MarketInfo
from horus.execution.accounts import Account
from horus.execution.executor import Executor
from horus.execution.ledger import GroupWriter, Ledger, Update
from horus.ops.paper import derived_key
from horus.venue.polymarket.auth import ApiCreds
from horus.venue.polymarket.clob import VenueReply
from horus.venue.polymarket.orders import address_of
from tests.integration.execute_helpers import CONDITION, copy_decision

pytestmark = pytest.mark.integration

KEY = derived_key("races", 0)
FOLLOWER = address_of(KEY).lower()


class Accounts:
    async def get(self, follower: str) -> Account:
        return Account(
            follower=follower,
            signer=follower,
            signature_type=0,
            private_key=KEY,
            creds=ApiCreds("key", "c2VjcmV0", "pass"),
        )

    async def for_row(self, follower: str, signer, ref) -> Account:
        return await self.get(follower)


async def market(token_id: str) -> MarketInfo:
    return MarketInfo(token_id=token_id, condition_id=CONDITION, tick_size=Decimal("0.01"), neg_risk=False)


class ScriptedVenue:
    """Answers every POST with `reply`, after running `meanwhile` (what another worker does while it is in flight)."""

    def __init__(self, reply: VenueReply, meanwhile=None) -> None:
        self.reply, self.meanwhile, self.posts = reply, meanwhile, 0

    async def post_order(self, body, creds, address) -> VenueReply:
        self.posts += 1
        if self.meanwhile is not None:
            await self.meanwhile()
        return self.reply


MATCHED = VenueReply(200, {"success": True, "status": "matched", "makingAmount": "5.5", "takingAmount": "10"}, None)


async def with_executor(settings, venue, scenario, **options):
    ledger = Ledger(settings.database_url, connections=2)
    await ledger.open()
    writer = GroupWriter(ledger)
    writer.start()
    emitted: list[dict] = []

    async def emit(record: dict) -> None:
        emitted.append(record)

    executor = Executor(
        mode="paper",
        ledger=ledger,
        writer=writer,
        accounts=Accounts(),
        venue=venue,
        lookup=None,
        market_info=market,
        emit=emit,
        owner="worker-a",
        **options,
    )
    try:
        return await scenario(executor, ledger), emitted
    finally:
        await writer.stop()
        await ledger.close()


def test_a_fill_that_loses_the_race_to_a_not_filled_is_recorded_as_a_correction(settings):
    decision = copy_decision(FOLLOWER, 0, tag=f"race-{time.time_ns()}")
    intent = decision["intent_id"]
    holder: dict = {}

    async def reconciler_elsewhere_settles_absent() -> None:
        ledger = holder["ledger"]
        row = await ledger.row(intent)
        won = await ledger.write_updates(
            [
                Update(
                    row.id,
                    row.result_seq,
                    Outcome("NOT_FILLED", error="absent"),
                    0,
                    {"status": "NOT_FILLED"},
                    None,
                    False,
                )
            ]
        )
        assert won == [True]

    async def scenario(executor, ledger):
        holder["ledger"] = ledger
        [work] = await executor.prepare([decision])
        await executor.run(work)
        return await ledger.row(intent)

    row, emitted = asyncio.run(
        with_executor(settings, ScriptedVenue(MATCHED, reconciler_elsewhere_settles_absent), scenario)
    )
    assert (row.status, row.filled_shares_e6, row.result_seq) == ("FILLED", 10_000_000, 2)
    assert [(r["status"], r["filled_shares_e6"]) for r in emitted] == [("FILLED", 10_000_000)]


def test_a_lane_whose_lease_was_taken_by_another_worker_does_not_post(settings):
    decision = copy_decision(FOLLOWER, 0, tag=f"lease-{time.time_ns()}")
    intent = decision["intent_id"]
    venue = ScriptedVenue(MATCHED)

    async def scenario(executor, ledger):
        [work] = await executor.prepare([decision])
        await asyncio.sleep(0.6)  # the lease (0.3 s) lapses: say, the lane waited behind a slow follower backlog
        assert await ledger.claim(intent, "worker-b", 0.3) is not None  # another worker's reconciler takes it
        await executor.run(work)
        return await ledger.row(intent)

    row, emitted = asyncio.run(with_executor(settings, venue, scenario, lease_s=0.3))
    assert venue.posts == 0
    assert row.locked_by == "worker-b" and row.status == "PENDING"
    assert emitted == []
