"""What every emulated partner shares: injected faults, the call log and the gate its routes run behind."""

import asyncio
import contextlib
import json
import math
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field, PrivateAttr

RouteHandler = Callable[[Request], Coroutine[Any, Any, Response]]
Gate = Callable[[Request, RouteHandler], Awaitable[Response]]
# (status, message, Retry-After or None) -> the partner's error response.
ErrorResponder = Callable[[int, str, str | None], Response]


class PartnerError(Exception):
    """A partner's refusal: answered with `status` and the partner's error body carrying `message`."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Fault(BaseModel):
    """An injected failure: answer `status` (or just wait) for the next `count` matching calls, or, with
    `for_seconds`, for every matching call until that long after it was queued (a partner down for a while)."""

    status: int | None = None
    count: int = Field(default=1, ge=1)
    for_seconds: float | None = Field(default=None, gt=0)
    retry_after: float | str | None = None
    match: str | None = None
    delay_seconds: float = Field(default=0.0, ge=0)
    after: bool = False
    _queued_at: float = PrivateAttr(default_factory=time.monotonic)

    def expired(self, now: float) -> bool:
        return self.for_seconds is not None and now - self._queued_at >= self.for_seconds

    @property
    def performs_call(self) -> bool:
        """Whether the real call happens: a lost answer (`after`) or a mere delay (no status)."""
        return self.after or self.status is None

    def matches(self, method: str, path: str) -> bool:
        """`match` is "<METHOD> <path suffix>", a bare path suffix, or null for any call."""
        if self.match is None:
            return True
        parts = self.match.split(maxsplit=1)
        if len(parts) == 1:
            return path.endswith(parts[0])
        return method.upper() == parts[0].upper() and path.endswith(parts[1])


@dataclass
class CallRecord:
    """One call made to a partner route, as the control API reports it."""

    at: float
    method: str
    path: str
    query: str
    status: int = 0
    # Who called, when the route knows it (the OAuth client behind a token request or a bearer token).
    caller: str | None = None
    # A write's JSON body, so that tests see what was sent (a PUT with only what changed).
    body: Any = None


@dataclass
class Traffic:
    """One account's queued faults and the log of the calls made to it."""

    faults: list[Fault] = field(default_factory=list)
    calls: list[CallRecord] = field(default_factory=list)

    def take_fault(self, method: str, path: str) -> Fault | None:
        """Uses up one count of the first injected fault matching this call (a fault for a while is not used up:
        it is dropped once its time has passed)."""
        now = time.monotonic()
        self.faults = [fault for fault in self.faults if not fault.expired(now)]
        fault = next((fault for fault in self.faults if fault.matches(method, path)), None)
        if fault is not None and fault.for_seconds is None:
            fault.count -= 1
            if fault.count == 0:
                self.faults.remove(fault)
        return fault

    def report(self) -> dict[str, Any]:
        """The call log, oldest first, with a count per status."""
        by_status = Counter(str(call.status) for call in self.calls)
        return {"items": [asdict(call) for call in self.calls], "count_by_status": dict(by_status)}

    async def logged(self, request: Request, path: str, answer: Awaitable[Response]) -> Response:
        """Awaits the answer and logs the call under `path` (the account's prefix left out) with its status."""
        call = CallRecord(time.time(), request.method, path, request.url.query)
        if request.method in ("POST", "PUT", "PATCH") and "json" in request.headers.get("content-type", ""):
            with contextlib.suppress(ValueError):
                call.body = json.loads(await request.body())
        response = await answer
        call.status = response.status_code
        call.caller = getattr(request.state, "caller", None)
        self.calls.append(call)
        return response


def describe_errors(errors: Sequence[Any]) -> str:
    """The first validation error as one line naming the field."""
    first = errors[0]
    location = ".".join(str(part) for part in first["loc"] if part not in ("body", "query", "path"))
    return f"{location}: {first['msg']}"


@dataclass(frozen=True)
class ErrorStyle:
    """Serves a partner's routes, real or faked, with that partner's error bodies."""

    error: ErrorResponder

    def fault_response(self, fault: Fault) -> Response:
        """The answer an injected fault gives instead of the real one."""
        retry_after = fault.retry_after
        if retry_after is not None and not isinstance(retry_after, str):
            retry_after = str(math.ceil(retry_after))
        return self.error(fault.status or 500, f"Injected fault {fault.status}", retry_after)

    async def serve(self, request: Request, serve: RouteHandler) -> Response:
        """Runs the real endpoint, turning refusals into the partner's error bodies."""
        try:
            return await serve(request)
        except PartnerError as exc:
            return self.error(exc.status, exc.message, None)
        except RequestValidationError as exc:
            return self.error(400, describe_errors(exc.errors()), None)

    async def answer(self, request: Request, serve: RouteHandler, fault: Fault | None) -> Response:
        """Answers as the fault says: after a delay, instead of the real call, or after it (a lost answer)."""
        if fault is None:
            return await self.serve(request, serve)
        if not fault.after:
            await asyncio.sleep(fault.delay_seconds)
        response = await self.serve(request, serve) if fault.performs_call else self.fault_response(fault)
        if fault.after:
            await asyncio.sleep(fault.delay_seconds)
        return self.fault_response(fault) if fault.status is not None else response


def gated_route_class(gate: Gate) -> type[APIRoute]:
    """A route class whose endpoints run behind `gate` (account, credentials, faults, call log)."""

    class GatedRoute(APIRoute):
        def get_route_handler(self) -> RouteHandler:
            """Wraps FastAPI's handler in the gate."""
            serve = super().get_route_handler()

            async def guarded(request: Request) -> Response:
                return await gate(request, serve)

            return guarded

    return GatedRoute
