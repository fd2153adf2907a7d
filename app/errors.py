"""Domain errors raised by services, and the one place that turns them into JSON answers."""

from collections.abc import Iterable, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import iter_route_contexts
from pydantic import BaseModel, Field, ValidationError
from starlette.exceptions import HTTPException
from starlette.routing import compile_path


class DomainError(Exception):
    status_code = 400

    def __init__(self, detail: Any) -> None:
        super().__init__(detail)
        self.detail = detail


class Unauthorized(DomainError):
    status_code = 401


class Forbidden(DomainError):
    status_code = 403


class NotFound(DomainError):
    status_code = 404


class Conflict(DomainError):
    status_code = 409


class ClientGone(DomainError):
    status_code = 400


class RequestTimeout(DomainError):
    status_code = 408


class PayloadTooLarge(DomainError):
    status_code = 413


class UnsupportedMediaType(DomainError):
    status_code = 415


def invalid_field(loc: tuple[str | int, ...], message: str, kind: str = "value_error") -> RequestValidationError:
    """A 422 in FastAPI's own shape, for checks that need more than the schema (settings, the database)."""
    return RequestValidationError([{"type": kind, "loc": ("body", *loc), "msg": message}])


# pydantic's wording, rewritten for people reading a form.
_PREFIXES = ("Value error, ", "Assertion failed, ")
_MESSAGES = {"extra_forbidden": "unknown field: this request has no such field (check its spelling)"}


def plain_errors(errors: Iterable[Any]) -> list[dict[str, Any]]:
    """One error per field, each with its `loc`, in plain words; never the input (it may hold a secret)."""
    seen: set[tuple[Any, ...]] = set()
    plain = []
    for error in errors:
        loc = tuple(error["loc"])
        if loc in seen:
            continue
        seen.add(loc)
        message = _MESSAGES.get(error["type"], str(error["msg"]))
        for prefix in _PREFIXES:
            message = message.removeprefix(prefix)
        where = [_utf8(part) if isinstance(part, str) else part for part in loc]
        plain.append({"type": error["type"], "loc": where, "msg": _utf8(message)})
    return plain


def _utf8(text: str) -> str:
    """A key as sent may hold a lone surrogate (`"\\ud800"`), which no UTF-8 answer can carry: shown as `?`."""
    return text.encode("utf-8", "replace").decode("utf-8")


def body_errors(exc: ValidationError, *loc: str | int) -> RequestValidationError:
    """A model's errors as a 422, each pointing at its field under `body` (and `loc`)."""
    errors = exc.errors(include_url=False, include_context=False, include_input=False)
    return RequestValidationError(plain_errors({**error, "loc": ("body", *loc, *error["loc"])} for error in errors))


UNEXPECTED = "An unexpected error occurred on our side; try again later."


class ErrorBody(BaseModel):
    detail: str


class FieldError(BaseModel):
    type: str = Field(examples=["missing"])
    loc: list[str | int] = Field(description="Where: `body`, `path` or `query`, then the field's path.")
    msg: str


class InvalidFields(BaseModel):
    detail: list[FieldError]


DEFAULT_DESCRIPTIONS = {
    401: "Missing or invalid credentials.",
    403: "These credentials may not do this.",
    404: "No such tenant (or one the caller may not see), or no such resource.",
    408: "The body did not arrive within 10 seconds.",
    409: "Conflicts with the current state.",
    413: "The body is over 1 MiB.",
    415: "The body is not `application/json`.",
    422: "Invalid input: one error per field, each naming it in `loc`.",
}


def answers(*statuses: int, described: dict[int, str] | None = None) -> dict[int | str, dict[str, Any]]:
    """The error answers a route can give, for its `responses=` (each a JSON `{"detail": ...}`)."""
    descriptions = {**DEFAULT_DESCRIPTIONS, **(described or {})}
    return {
        status: {"model": InvalidFields if status == 422 else ErrorBody, "description": descriptions[status]}
        for status in statuses
    }


def error_answer(exc: DomainError | RequestValidationError) -> JSONResponse:
    """The JSON answer to a domain error or to invalid input (also used by `app.direct_routes`)."""
    if isinstance(exc, RequestValidationError):
        return JSONResponse({"detail": plain_errors(exc.errors())}, status_code=422)
    headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else None
    return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=headers)


async def _known_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DomainError | RequestValidationError)
    return error_answer(exc)


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    # The server logs the exception with its traceback (Starlette raises it again after this answer).
    return JSONResponse({"detail": UNEXPECTED}, status_code=500)


def allowed_methods(routes: Sequence[Any], path: str) -> list[str]:
    """Every method some route answers on this path (several routes may share one path, one method each)."""
    methods: set[str] = set()
    for route in iter_route_contexts(routes):
        if route.path and route.methods and compile_path(route.path)[0].match(path):
            methods |= set(route.methods)
    return sorted(methods)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        allow = ", ".join(allowed_methods(request.app.routes, request.url.path))
        exc = HTTPException(405, exc.detail, headers={**(exc.headers or {}), "Allow": allow})
    return await http_exception_handler(request, exc)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(DomainError, _known_error)
    app.add_exception_handler(RequestValidationError, _known_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)
