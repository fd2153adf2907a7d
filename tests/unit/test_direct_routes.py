"""Only routes that FastAPI would do nothing more for may be answered directly (app.direct_routes)."""

from typing import Annotated

import pytest
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from app.direct_routes import DirectRoutes
from app.routers import webhooks


async def downstream(scope: Scope, receive: Receive, send: Send) -> None:
    raise AssertionError("never called here")


def a_route(endpoint: object) -> APIRouter:
    router = APIRouter()
    router.add_api_route("/hooks/{name}", endpoint, methods=["POST"])  # type: ignore[arg-type]
    return router


async def needs_nothing() -> str:
    return "x"


async def takes_request_and_path(request: Request, name: str) -> JSONResponse:
    return JSONResponse({})


async def takes_a_query(request: Request, name: str, page: int = 1) -> JSONResponse:
    return JSONResponse({})


async def takes_a_dependency(
    request: Request, name: str, extra: Annotated[str, Depends(needs_nothing)]
) -> JSONResponse:
    return JSONResponse({})


async def takes_an_int_path(request: Request, name: int) -> JSONResponse:
    return JSONResponse({})


async def takes_no_request(name: str) -> JSONResponse:
    return JSONResponse({})


def test_the_webhooks_and_a_request_only_route_are_accepted() -> None:
    assert len(DirectRoutes(downstream, webhooks.router.routes).routes) == 4
    assert len(DirectRoutes(downstream, a_route(takes_request_and_path).routes).routes) == 1


@pytest.mark.parametrize("endpoint", [takes_a_query, takes_a_dependency, takes_an_int_path, takes_no_request])
def test_a_route_whose_parameters_fastapi_would_check_is_refused(endpoint: object) -> None:
    with pytest.raises(TypeError, match="request and path parameters only"):
        DirectRoutes(downstream, a_route(endpoint).routes)
