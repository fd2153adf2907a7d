"""The gate every Lucca call goes through: account, credentials, rate limit, injected faults, call log; and the error
bodies of each API surface (legacy `{"Message"}`, v5 `problem+json`, the token endpoint's OAuth errors)."""

import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Annotated

from fastapi import Depends, Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from app.sandbox.faults import ErrorStyle, RouteHandler, gated_route_class
from app.sandbox.lucca_models import LuccaError
from app.sandbox.lucca_state import LuccaAccount, get_lucca_sandbox

AUTH_PATTERN = re.compile(r"\s*lucca\s+application\s*=\s*(\S+)\s*", re.IGNORECASE)
# A refusal the surface answers before the call reaches Lucca's data (bad credentials), or None to go on.
Authorizer = Callable[[LuccaAccount, Request], Response | None]

PROBLEM_TYPES = {
    400: "https://tools.ietf.org/html/rfc7231#section-6.5.1",
    401: "https://datatracker.ietf.org/doc/html/rfc7235#section-3.1",
    403: "https://datatracker.ietf.org/doc/html/rfc7235#section-3.1",
    404: "https://tools.ietf.org/html/rfc7231#section-6.5.4",
}
# Lucca titles a 403 (a missing scope) "Unauthorized" too.
PROBLEM_TITLES = {400: "One or more validation errors occurred.", 403: "Unauthorized"}


def retry_headers(retry_after: str | None) -> dict[str, str] | None:
    """A `Retry-After` header when there is one."""
    return {"Retry-After": retry_after} if retry_after is not None else None


def lucca_error(status: int, message: str, retry_after: str | None = None) -> JSONResponse:
    """An error the way Lucca's legacy API words it."""
    return JSONResponse({"Message": message}, status_code=status, headers=retry_headers(retry_after))


def problem(status: int, message: str, retry_after: str | None = None) -> JSONResponse:
    """An error the way Lucca's v5 API words it: RFC 7807 `problem+json`."""
    body = {
        "type": PROBLEM_TYPES.get(status, "about:blank"),
        "title": PROBLEM_TITLES.get(status, HTTPStatus(status).phrase),
        "status": status,
        "detail": message,
    }
    return JSONResponse(
        body, status_code=status, media_type="application/problem+json", headers=retry_headers(retry_after)
    )


def oauth_error(status: int, message: str, retry_after: str | None = None) -> JSONResponse:
    """An error the way an OAuth token endpoint words it (RFC 6749 section 5.2)."""
    codes = {400: "invalid_request", 401: "invalid_client"}
    body = {"error": codes.get(status, "server_error"), "error_description": message}
    return JSONResponse(body, status_code=status, headers=retry_headers(retry_after))


@dataclass(frozen=True)
class Surface:
    """One of Lucca's API surfaces: how it checks credentials, words errors, and whether calls use the window."""

    errors: ErrorStyle
    authorize: Authorizer
    rate_limited: bool = True

    async def answer(self, account: LuccaAccount, request: Request, serve: RouteHandler) -> Response:
        """Checks the credentials and the window, then serves the call or the fault injected for it."""
        refusal = self.authorize(account, request)
        if refusal is not None:
            return refusal
        now = time.monotonic()
        if self.rate_limited:
            retry_after = account.window.retry_after(now)
            if retry_after is not None:
                return self.errors.error(429, "Too many requests, retry later", str(retry_after))
        fault = account.traffic.take_fault(request.method, request.url.path)
        # Only calls that really reach Lucca use up the window; refused and faked ones do not.
        if self.rate_limited and (fault is None or fault.performs_call):
            account.window.record(now)
        return await self.errors.answer(request, serve, fault)

    def route_class(self) -> type[APIRoute]:
        """The route class of this surface's endpoints: one account per path, logged with its status."""

        async def guard(request: Request, serve: RouteHandler) -> Response:
            name = request.path_params["account"]
            account = get_lucca_sandbox(request).accounts.get(name)
            if account is None:
                return self.errors.error(404, f"Unknown Lucca account '{name}'", None)
            account.public_url = f"{str(request.base_url).rstrip('/')}/{name}"
            path = request.url.path[len(name) + 1 :]
            return await account.traffic.logged(request, path, self.answer(account, request, serve))

        return gated_route_class(guard)


def get_account(request: Request, account: str) -> LuccaAccount:
    """The account named in the path (the gate already checked that it exists)."""
    found = get_lucca_sandbox(request).accounts.get(account)
    if found is None:
        raise LuccaError(404, f"Unknown Lucca account '{account}'")
    return found


AccountDep = Annotated[LuccaAccount, Depends(get_account)]


def authorize_key(account: LuccaAccount, request: Request) -> Response | None:
    """The legacy API's credentials: `Authorization: lucca application=<key>`."""
    match = AUTH_PATTERN.fullmatch(request.headers.get("authorization") or "")
    if match is None or not secrets.compare_digest(match[1].encode(), account.api_key.encode()):
        return lucca_error(401, "Missing or invalid key: send 'Authorization: lucca application=<key>'")
    return None


# The legacy API (v3 users, v4 structure): API key, the account's window, `{"Message"}` errors.
LEGACY = Surface(ErrorStyle(lucca_error), authorize_key)
LegacyRoute = LEGACY.route_class()
