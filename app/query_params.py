"""Query parameters a route does not define are refused, as body fields are (contract 3: a typo must not pass
silently, e.g. `?satus=failed` listing every run as if it were filtered)."""

from fastapi import Request
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute

UNKNOWN = "unknown parameter: this route has no such query parameter (check its spelling)"


async def refuse_unknown_query_parameters(request: Request) -> None:
    route = request.scope.get("route")
    if not isinstance(route, APIRoute) or not request.query_params:
        return
    known = query_parameters(route)
    unknown = sorted({name for name in request.query_params if name not in known})
    if unknown:
        raise RequestValidationError(
            [{"type": "extra_forbidden", "loc": ("query", name), "msg": UNKNOWN} for name in unknown]
        )


def query_parameters(route: APIRoute) -> frozenset[str]:
    """The names a route reads from its query, its dependencies' included (a few objects to walk)."""
    names: set[str] = set()
    pending: list[Dependant] = [route.dependant]
    while pending:
        dependant = pending.pop()
        names.update(field.alias for field in dependant.query_params)
        pending.extend(dependant.dependencies)
    return frozenset(names)
