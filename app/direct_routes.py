"""Routes answered straight from the middleware stack, past FastAPI's request handling.

The webhooks are the busiest routes (every Softgarden delivery, every Cards event), and their endpoints already do
their own steps (token, body, one insert): they take only the request and their path parameters. For them FastAPI's
per-request machinery (its router, dependency solving, the exception and exit-stack middlewares) is pure overhead:
py-spy measured it at 0.4 of 0.9 ms of API CPU per delivery under `bench/webhook_ingest`. FastAPI still builds and
documents these routes as usual (OpenAPI, a 405 naming the allowed method for any other method).
"""

from collections.abc import Iterable

from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Receive, Scope, Send

from app.errors import DomainError, error_answer


class DirectRoutes:
    """ASGI middleware: a request matching one of `routes` fully (path and method) is answered by that route's
    endpoint, called as `endpoint(request, **path_params)`; its domain and validation errors get the app's JSON
    answers, anything else propagates to the app's server-error handler (a JSON 500, logged)."""

    def __init__(self, app: ASGIApp, routes: Iterable[BaseRoute]) -> None:
        self.app = app
        self.routes = [_direct(route) for route in routes]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            for route in self.routes:
                match, child_scope = route.matches(scope)
                if match is Match.FULL:
                    scope.update(child_scope)
                    request = Request(scope, receive)
                    try:
                        response = await route.endpoint(request, **scope["path_params"])
                    except (DomainError, RequestValidationError) as exc:
                        response = error_answer(exc)
                    await response(scope, receive, send)
                    return
        await self.app(scope, receive, send)


def _direct(route: BaseRoute) -> APIRoute:
    """The route, if nothing FastAPI would do for it is skipped here: no dependency, query, header or body
    parameter (each would go unvalidated), only the request and path parameters taken as the strings they are."""
    if not isinstance(route, APIRoute):
        raise TypeError(f"{route!r} is not an APIRoute")
    dependant = route.dependant
    declared = (
        dependant.dependencies,
        dependant.query_params,
        dependant.header_params,
        dependant.cookie_params,
        dependant.body_params,
    )
    untyped_path = any(param.field_info.annotation is not str for param in dependant.path_params)
    if any(declared) or untyped_path or dependant.request_param_name is None:
        raise TypeError(f"{route.path}: a direct route's endpoint takes the request and path parameters only")
    return route
