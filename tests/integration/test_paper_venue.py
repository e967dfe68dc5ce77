"""D1: paper trading of real leaders on the simulator with no extra step. The paper venue starts without markets;
before decide reads a batch's market data, each token a leader traded gets a market on the simulator around the
leader's price, and a later fill at another price moves the book there (horus.paper.PaperMarkets)."""
from __future__ import annotations

from decimal import Decimal

import pytest

from horus.domain.config import ConfigState
from horus.domain.control import ControlState
from horus.domain.decide import StaticView
from horus.paper import paper_condition
from horus.venue.simulator.clob import SimulatorConfig, run_simulator
from streams.decide import VenueLookups
from streams.runtime import Runtime

pytestmark = pytest.mark.integration

YES = "71321045679252212594626385532706912750332728571942532289631379312455583992563"
NO = "52114319501245915516055106046884209969926127482827954674443846427813813222426"
CONDITION = "0x" + "c1" * 32


def candidate(token: str, price: str, condition: str | None = CONDITION) -> dict:
    return {"token_id": token, "leader_price": price, "condition_id": condition, "follower": "0x" + "f0" * 20,
            "side": "BUY"}


def test_paper_decide_makes_and_moves_the_markets_its_leaders_trade(settings):
    with run_simulator(SimulatorConfig()) as sim:  # an empty paper venue, as `horus stack up` starts it
        s = settings.model_copy(update={"venue_mode": "paper", "clob_url": sim.url, "gamma_url": "",
                                        "balance_source": "fixed"})
        runtime = Runtime(s)
        view = StaticView(ConfigState(), ControlState())
        lookups = VenueLookups(runtime, view)
        try:
            lookups.prefetch([candidate(YES, "0.42")])
            market = view.markets[YES]
            assert market is not None and market.condition_id == CONDITION  # the leader's market, its real id
            quote = view.quotes[YES]
            assert quote.best_bid <= Decimal("0.42") < quote.best_ask

            lookups.prefetch([candidate(YES, "0.61")])  # the leader trades higher: the book follows
            quote = view.quotes[YES]
            assert quote.best_bid <= Decimal("0.61") < quote.best_ask

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

        # off: the simulator's markets stay as seeded
        runtime = Runtime(s.model_copy(update={"paper_follow_leaders": False}))
        view = StaticView(ConfigState(), ControlState())
        lookups = VenueLookups(runtime, view)
        try:
            lookups.prefetch([candidate("555", "0.5", condition=None)])
            assert view.markets.get("555") is None and len(sim.state.markets) == 3
        finally:
            lookups.close()
            runtime.close()
