"""Reading a JSON body ourselves: the bytes before any database work, the verdict after the credentials.

FastAPI parses a declared body before any dependency runs, so a request with bad credentials and a bad body
would get a 422; the contract wants credentials checked first. Routes therefore take their body through
`json_body(Model)`, declared after the auth dependency, which itself waits for the body's bytes
(`received_body`) before its query: a slow sender never holds a database connection.

Parsing is bounded before it can go deep: the nesting depth is measured on the raw bytes, numbers are refused
past `MAX_NUMBER_CHARS` before Python converts them, and JSON's non-standard `NaN`/`Infinity` are refused.
"""

import asyncio
import json
import math
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from itertools import accumulate
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from starlette.requests import ClientDisconnect

from app.errors import ClientGone, DomainError, PayloadTooLarge, RequestTimeout, UnsupportedMediaType, body_errors

MAX_BODY_BYTES = 1024 * 1024
# The whole body must arrive within this time; the sender gets 408 (after its credentials are checked).
BODY_READ_SECONDS = 10.0
MAX_DEPTH = 32
MAX_NUMBER_CHARS = 100
Model = TypeVar("Model", bound=BaseModel)

# JSON strings, so that brackets inside them are not counted (the classic unrolled loop: linear, no backtracking).
_STRINGS = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_OPENING_CLOSING = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")
_NOT_BRACKETS = bytes(byte for byte in range(256) if byte not in b"[{]}")


@dataclass(frozen=True)
class ReceivedBody:
    """The body's bytes, or what went wrong reading them (answered only after the credentials are checked)."""

    content: bytes
    problem: DomainError | None = None


async def received_body(request: Request) -> ReceivedBody:
    """Read the whole body once per request, within `BODY_READ_SECONDS` and `MAX_BODY_BYTES`; no database needed."""
    received: ReceivedBody | None = getattr(request.state, "received_body", None)
    if received is None:
        received = await _read(request)
        request.state.received_body = received
    return received


ReceivedBodyDep = Annotated[ReceivedBody, Depends(received_body)]


async def _read(request: Request) -> ReceivedBody:
    too_large = PayloadTooLarge(f"The body is over {MAX_BODY_BYTES // 1024} KiB.")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        return ReceivedBody(b"", too_large)
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(BODY_READ_SECONDS):
            async for chunk in request.stream():
                size += len(chunk)
                if size > MAX_BODY_BYTES:
                    return ReceivedBody(b"", too_large)
                chunks.append(chunk)
    except TimeoutError:
        return ReceivedBody(b"", RequestTimeout(f"The body did not arrive within {BODY_READ_SECONDS:g} seconds."))
    except ClientDisconnect:
        # The sender went away mid-body: nothing was stored, and nobody is left to read an answer.
        return ReceivedBody(b"", ClientGone("The client disconnected before sending the whole body."))
    return ReceivedBody(b"".join(chunks))


def require_json_content_type(request: Request) -> None:
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != "application/json":
        raise UnsupportedMediaType("Send the body as application/json.")


def invalid_json(message: str) -> RequestValidationError:
    return RequestValidationError([{"type": "json_invalid", "loc": ("body",), "msg": message}])


def decode_json(raw: bytes) -> Any:
    """Parse UTF-8 JSON, refusing (422) what would make parsing go deep or numbers grow without bound."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise invalid_json(f"The body is not UTF-8 text: {exc.reason} at byte {exc.start}.") from None
    if nests_too_deep(raw):
        raise invalid_json(f"The body nests arrays and objects deeper than {MAX_DEPTH} levels.")
    try:
        return json.loads(text, parse_int=_bounded_int, parse_float=_bounded_float, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise invalid_json(f"The body is not valid JSON: {exc}") from None
    except _RefusedNumber as exc:
        raise invalid_json(str(exc)) from None


def nests_too_deep(raw: bytes) -> bool:
    """Arrays and objects nested deeper than `MAX_DEPTH`, counted on the UTF-8 bytes outside strings.

    In UTF-8 no character but `"`, `\\` and the brackets themselves holds those bytes, so the count is exact up to
    the first syntax error, which is as far as the parser would go.
    """
    if raw.count(b"[") + raw.count(b"{") <= MAX_DEPTH:
        return False
    # Each opening bracket becomes +1 and each closing one -1 (a signed byte); the running sum is the depth.
    brackets = _STRINGS.sub(b"", raw).translate(_OPENING_CLOSING, _NOT_BRACKETS)
    return max(accumulate(memoryview(brackets).cast("b")), default=0) > MAX_DEPTH


class _RefusedNumber(ValueError):
    pass


def _bounded_int(text: str) -> int:
    if len(text) > MAX_NUMBER_CHARS:
        raise _RefusedNumber(f"The body holds a number longer than {MAX_NUMBER_CHARS} characters.")
    return int(text)


def _bounded_float(text: str) -> float:
    value = float(text) if len(text) <= MAX_NUMBER_CHARS else math.inf
    if not math.isfinite(value):
        raise _RefusedNumber(f"The body holds a number too large to use ({text[:20]}…).")
    return value


def _no_constant(name: str) -> Any:
    raise _RefusedNumber(f"The body is not valid JSON: {name} is not a JSON value.")


def validate_body(model: type[Model], data: Any) -> Model:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise body_errors(exc) from None


def read_json(model: type[Model], request: Request, received: ReceivedBody) -> Model:
    """The body as `model`, or the contract's answer: 415, then 413/408, then 422 (invalid JSON or fields)."""
    require_json_content_type(request)
    if received.problem is not None:
        raise received.problem
    return validate_body(model, decode_json(received.content))


@dataclass(frozen=True)
class CheckedBody(Generic[Model]):
    """A body checked before the credentials are, whose verdict is given after them (`value()`)."""

    model: Model | None
    error: Exception | None

    def value(self) -> Model:
        if self.error is not None:
            raise self.error
        assert self.model is not None
        return self.model


def check_json(model: type[Model], request: Request, received: ReceivedBody) -> CheckedBody[Model]:
    try:
        return CheckedBody(read_json(model, request, received), None)
    except (DomainError, RequestValidationError) as exc:
        return CheckedBody(None, exc)


def json_body(model: type[Model]) -> Callable[[Request, ReceivedBody], Awaitable[Model]]:
    async def dependency(request: Request, received: ReceivedBodyDep) -> Model:
        return read_json(model, request, received)

    return dependency


def openapi_body(model: type[BaseModel] | dict[str, Any], examples: dict[str, Any]) -> dict[str, Any]:
    """Document a body read by `json_body` (FastAPI cannot see it), with its schema (or a model's) and examples."""
    schema = dict(model) if isinstance(model, dict) else model.model_json_schema()
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": _inline_refs(schema, schema.pop("$defs", {})),
                    "examples": {name: {"value": value} for name, value in examples.items()},
                }
            },
        }
    }


def _inline_refs(node: Any, defs: dict[str, Any]) -> Any:
    """Replace pydantic's local `$ref`s by their definitions, so the schema stands alone in the document."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            return _inline_refs(defs[ref.removeprefix("#/$defs/")], defs)
        return {key: _inline_refs(value, defs) for key, value in node.items()}
    if isinstance(node, list):
        return [_inline_refs(item, defs) for item in node]
    return node
