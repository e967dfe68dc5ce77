"""D1: paper trading of real leaders on the simulator with no extra step. The paper venue (`horus stack up`'s)
starts without markets and says so (identity: follow_leaders); before decide reads a batch's market data, each
token a leader traded gets a market on the simulator, its best level on the leader's side at the leader's
price, and a later fill at another price moves the book there (horus.venue.paper.PaperMarkets). A simulator seeded
with its own markets (tests, the demo, chaos) is left alone."""

from __future__ import annotations

from decimal import Decimal

import pytest

from horus.domain.config import ConfigState
from horus.domain.control import ControlState
from horus.domain.decide import StaticView
from horus.venue.paper import paper_condition
from horus.venue.simulator.clob import SimulatorConfig, run_simulator
from streams.decide_lookups import VenueLookups
from streams.runtime import Runtime

pytestmark = pytest.mark.integration

YES = "71321045679252212594626385532706912750332728571942532289631379312455583992563"
NO = "52114319501245915516055106046884209969926127482827954674443846427813813222426"
CONDITION = "0x" + "c1" * 32


def candidate(token: str, price: str, condition: str | None = CONDITION, side: str = "BUY") -> dict:
    return {
        "token_id": token,
        "leader_price": price,
        "condition_id": condition,
        "follower": "0x" + "f0" * 20,
        "side": side,
    }


def test_paper_decide_makes_and_moves_the_markets_its_leaders_trade(settings):
    with run_simulator(SimulatorConfig(), follow_leaders=True) as sim:  # as `horus stack up` runs it
        s = settings.model_copy(
            update={"venue_mode": "paper", "clob_url": sim.url, "gamma_url": "", "balance_source": "fixed"}
        )
        runtime = Runtime(s)
        view = StaticView(ConfigState(), ControlState())
        lookups = VenueLookups(runtime, view)
        try:
            lookups.prefetch([candidate(YES, "0.42")])
            market = view.markets[YES]
            assert market is not None and market.condition_id == CONDITION  # the leader's market, its real id
            quote = view.quotes[YES]
            assert quote.best_ask == Decimal("0.42")  # where the leader bought: a copy within slippage fills

            lookups.prefetch([candidate(YES, "0.61")])  # the leader trades higher: the book follows
            assert view.quotes[YES].best_ask == Decimal("0.61")
            lookups.prefetch([candidate(YES, "0.537", side="SELL")])  # off the grid: the best bid at or below it
            assert view.quotes[YES].best_bid == Decimal("0.53")

            # the other outcome of the same market: a market of its own (a simulator market cannot gain tokens)
            lookups.prefetch([candidate(NO, "0.39")])
            assert view.markets[NO].condition_id == paper_condition(NO)
            # a fill with no condition id (chain source) and a hostile price: no exception, just no market
            lookups.prefetch([candidate("123456789", "0.5", condition=None), candidate("987654321", "-3")])
            assert view.markets["123456789"].condition_id == paper_condition("123456789")
            assert view.markets.get("987654321") is None
            assert len(sim.state.markets) == 3
        finally:
            lookups.close()
            runtime.close()

    # a simulator seeded with its own markets: they stay as seeded, and no market is made
    with run_simulator(
        SimulatorConfig(markets=[{"condition_id": CONDITION, "tokens": [{"token_id": YES, "price": "0.5"}]}])
    ) as seeded:
        s = settings.model_copy(
            update={"venue_mode": "paper", "clob_url": seeded.url, "gamma_url": "", "balance_source": "fixed"}
        )
        runtime = Runtime(s)
        view = StaticView(ConfigState(), ControlState())
        lookups = VenueLookups(runtime, view)
        try:
            lookups.prefetch([candidate(YES, "0.7"), candidate("555", "0.5", condition=None)])
            assert view.markets.get("555") is None and len(seeded.state.markets) == 1
            assert view.quotes[YES].best_bid == Decimal("0.5")  # not moved to the leader's price
        finally:
            lookups.close()
            runtime.close()
