"""API keys: created and derived with an L1 proof, listed and deleted with L2 auth."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from horus.venue.simulator.clob.auth import check_l1
from horus.venue.simulator.clob.routes.common import authenticate, venue
from horus.venue.simulator.clob.views import json_response

router = APIRouter()


@router.post("/auth/api-key")
async def create_api_key(request: Request) -> Response:
    state = venue(request)
    address, nonce = check_l1(request.headers, state.chain_id)
    return json_response(state.api_keys.create(address, nonce).public())


@router.get("/auth/derive-api-key")
async def derive_api_key(request: Request) -> Response:
    state = venue(request)
    address, nonce = check_l1(request.headers, state.chain_id)
    return json_response(state.api_keys.derive(address, nonce).public())


@router.get("/auth/api-keys")
async def api_keys(request: Request) -> Response:
    state = venue(request)
    key, _ = await authenticate(request, state)
    return json_response({"apiKeys": [k.api_key for k in state.api_keys.values() if k.address == key.address]})


@router.delete("/auth/api-key")
async def delete_api_key(request: Request) -> Response:
    state = venue(request)
    key, _ = await authenticate(request, state)
    state.api_keys.revoke(key.api_key)
    return json_response("OK")


@router.get("/auth/ban-status/closed-only")
async def closed_only(request: Request) -> Response:
    state = venue(request)
    await authenticate(request, state)
    return json_response({"closed_only": False})
