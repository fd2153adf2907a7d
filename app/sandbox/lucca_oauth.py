"""Lucca's OAuth side: the client-credentials token endpoint, and the bearer check every v5 call passes
(token, `Api-Version`, scope), with `problem+json` refusals that name no more than Lucca does."""

import secrets
import time
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from app.sandbox.faults import ErrorStyle
from app.sandbox.lucca_gate import AccountDep, Surface, oauth_error, problem
from app.sandbox.lucca_state import LuccaAccount, Token

API_VERSION = "2024-11-01"
FORM = "application/x-www-form-urlencoded"


def no_credentials(account: LuccaAccount, request: Request) -> Response | None:
    """The token endpoint checks the client itself (its answers are OAuth errors, not problems)."""
    return None


# Token requests are logged and can be faulted, but do not count against the account's rate limit.
TOKEN_SURFACE = Surface(ErrorStyle(oauth_error), no_credentials, rate_limited=False)
router = APIRouter(prefix="/{account}", route_class=TOKEN_SURFACE.route_class(), tags=["lucca oauth"])


def token_refusal(status: int, error: str, description: str) -> JSONResponse:
    """An OAuth error with its RFC 6749 code."""
    return JSONResponse({"error": error, "error_description": description}, status_code=status)


@router.post("/connect/token")
async def issue_token(request: Request, lucca: AccountDep) -> JSONResponse:
    """Client-credentials grant: form-encoded `grant_type`, `client_id`, `client_secret`, `scope` (space-separated)."""
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != FORM:
        return token_refusal(400, "invalid_request", f"The token request must be form-encoded ({FORM})")
    form = dict(parse_qsl((await request.body()).decode(errors="replace")))
    if form.get("grant_type") != "client_credentials":
        return token_refusal(400, "unsupported_grant_type", "grant_type must be client_credentials")
    client_id = form.get("client_id", "")
    request.state.caller = client_id or None
    client = lucca.oauth_clients.get(client_id)
    secret = form.get("client_secret", "")
    if client is None or not secrets.compare_digest(secret.encode(), client.client_secret.encode()):
        return token_refusal(401, "invalid_client", "Unknown client or wrong secret")
    asked = form.get("scope", "").split() or client.scopes
    if any(scope not in client.scopes for scope in asked):
        return token_refusal(400, "invalid_scope", "The client may not have the requested scope")
    now = time.time()
    # Expired tokens go when a new one is made, so the store stays as small as the tokens in use.
    lucca.tokens = {key: token for key, token in lucca.tokens.items() if token.expires_at > now}
    access_token = secrets.token_urlsafe(32)
    lucca.tokens[access_token] = Token(client_id, frozenset(asked), now + lucca.token_lifetime_seconds)
    body = {"access_token": access_token, "token_type": "Bearer", "expires_in": lucca.token_lifetime_seconds}
    return JSONResponse(body, headers={"Cache-Control": "no-store"})


def required_scopes(request: Request) -> set[str]:
    """The scopes that open this v5 call: `<collection>.readonly` or `.readwrite` to read, `.readwrite` to write."""
    parts = request.url.path.split("/")
    collection = parts[parts.index("lucca-api") + 1]
    if request.method in ("GET", "HEAD"):
        return {f"{collection}.readonly", f"{collection}.readwrite"}
    return {f"{collection}.readwrite"}


def authorize_bearer(account: LuccaAccount, request: Request) -> Response | None:
    """v5 credentials: a live bearer token of this account, `Api-Version: 2024-11-01`, a scope for the path."""
    scheme, _, value = (request.headers.get("authorization") or "").partition(" ")
    token = account.tokens.get(value.strip()) if scheme.lower() == "bearer" else None
    if token is None or token.expires_at <= time.time():
        return problem(401, "You are not authenticated. Please refresh your token.")
    request.state.caller = token.client_id
    if request.headers.get("api-version") != API_VERSION:
        return problem(400, f"The Api-Version header is required and must be {API_VERSION}")
    if not token.scopes & required_scopes(request):
        return problem(403, "You do not have the required oAuth scopes.")
    return None


# The OAuth API (v5): bearer token, the account's window (shared with v3/v4), `problem+json` errors.
V5_SURFACE = Surface(ErrorStyle(problem), authorize_bearer)


def v5_headers(account: LuccaAccount) -> dict[str, str]:
    """What every v5 answer carries: `Api-Version`, and `Sunset` / `Deprecation` when a control set them."""
    headers = {"Api-Version": API_VERSION}
    if account.sunset is not None:
        headers["Sunset"] = account.sunset
    if account.deprecation is not None:
        headers["Deprecation"] = account.deprecation
    return headers


def v5_response(account: LuccaAccount, body: object, status_code: int = 200) -> JSONResponse:
    """A v5 answer with its headers."""
    return JSONResponse(body, status_code=status_code, headers=v5_headers(account))
