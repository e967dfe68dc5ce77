"""The HTTP surface: the CLOB V2 REST subset py-clob-client-v2 uses, plus `/_sim` admin routes (no auth).
The routes live in routes/, one router per concern; this module assembles them with the error handlers and
the latency middleware."""

from __future__ import annotations

from fastapi import FastAPI, Request
from pydantic import ValidationError
from starlette.requests import ClientDisconnect
from starlette.responses import Response

from horus.venue.simulator.clob.auth import AuthError
from horus.venue.simulator.clob.config import SimulatorConfig
from horus.venue.simulator.clob.faults import LatencyMiddleware
from horus.venue.simulator.clob.rejections import Rejected
from horus.venue.simulator.clob.routes import account_data, admin, keys, market_data, orders
from horus.venue.simulator.clob.state import VenueState
from horus.venue.simulator.clob.views import json_response


def create_app(config: SimulatorConfig | None = None, *, follow_leaders: bool = False) -> FastAPI:
    """`follow_leaders`: declared on /_sim/identity (a paper venue whose markets the engine makes as leaders
    trade; horus.venue.simulator.identity)."""
    state = VenueState(config or SimulatorConfig())
    app = FastAPI(
        title="Horus CLOB V2 simulator",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        exception_handlers={
            ClientDisconnect: _client_gone,
            AuthError: _auth_error,
            Rejected: _rejected,
            ValidationError: _invalid_input,
        },
    )
    app.state.venue = state
    app.state.follow_leaders = follow_leaders
    app.add_middleware(LatencyMiddleware, faults=state.faults, advance=state.matching.advance)
    for routes in (market_data, keys, orders, account_data, admin):
        app.include_router(routes.router)
    return app


async def _client_gone(_request: Request, _exc: ClientDisconnect) -> Response:
    return Response(status_code=499)  # the client went away mid-body (a killed worker): nobody to answer


async def _auth_error(_request: Request, exc: AuthError) -> Response:
    return json_response({"error": exc.message}, 401)


async def _rejected(_request: Request, exc: Rejected) -> Response:
    return json_response({"error": exc.message}, exc.status)


async def _invalid_input(_request: Request, exc: ValidationError) -> Response:
    fields = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
    return json_response({"error": f"invalid input: {fields}"}, 422)
