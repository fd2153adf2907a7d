"""Reading a JSON body ourselves, after authentication, with the contract's limits and answers.

FastAPI parses a declared body before any dependency runs, so a request with bad credentials and a bad body
would get a 422; the contract wants credentials checked first. Routes therefore take their body through
`json_body(Model)`, declared after the auth dependency.
"""

import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from starlette.requests import ClientDisconnect

from app.errors import ClientGone, PayloadTooLarge, UnsupportedMediaType, body_errors

MAX_BODY_BYTES = 1024 * 1024
Model = TypeVar("Model", bound=BaseModel)


async def read_limited(request: Request, limit: int = MAX_BODY_BYTES) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"The body is over {limit // 1024} KiB.")
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(f"The body is over {limit // 1024} KiB.")
            chunks.append(chunk)
    except ClientDisconnect:
        # The sender went away mid-body: nothing was stored, and nobody is left to read an answer.
        raise ClientGone("The client disconnected before sending the whole body.") from None
    return b"".join(chunks)


def require_json_content_type(request: Request) -> None:
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != "application/json":
        raise UnsupportedMediaType("Send the body as application/json.")


async def parse_json(request: Request) -> Any:
    require_json_content_type(request)
    raw = await read_limited(request)
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RequestValidationError(
            [
                {
                    "type": "json_invalid",
                    "loc": ("body",),
                    "msg": f"The body is not valid JSON: {exc}",
                }
            ]
        ) from None


def validate_body(model: type[Model], data: Any) -> Model:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise body_errors(exc) from None


def json_body(model: type[Model]) -> Callable[[Request], Awaitable[Model]]:
    async def dependency(request: Request) -> Model:
        return validate_body(model, await parse_json(request))

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
