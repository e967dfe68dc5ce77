"""A local CLOB V2 venue: the REST subset py-clob-client-v2 uses, with L1/L2 auth, EIP-712 order signature
checks (types 0-3, domain versions 2 and 3), books, matching, V2 taker fees, balances and fault injection.
Imports nothing of the engine outside this package."""

from horus.venue.simulator.clob.app import create_app
from horus.venue.simulator.clob.config import AccountConfig, FaultConfig, MarketConfig, SimulatorConfig, TokenConfig
from horus.venue.simulator.clob.runner import RunningSimulator, run_simulator
from horus.venue.simulator.clob.state import VenueState

__all__ = [
    "AccountConfig",
    "FaultConfig",
    "MarketConfig",
    "RunningSimulator",
    "SimulatorConfig",
    "TokenConfig",
    "VenueState",
    "create_app",
    "run_simulator",
]
