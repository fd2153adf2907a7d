"""The console (contract section 12): a page served by the API itself, and the one call it needs to start.

The page and its assets are public and hold no data; they are read once from `app/console/` and served with
headers that allow no inline script, nothing from another origin, and no framing.
"""

from pathlib import Path

from fastapi import APIRouter, Depends, Response

from app.auth import CallerDep, OperatorScheme, TenantScheme
from app.errors import NotFound, answers
from app.query_params import refuse_unknown_query_parameters
from app.schemas.console import SignedIn
from app.services.tenants import read_tenant

CONSOLE_DIR = Path(__file__).resolve().parent.parent / "console"
MEDIA_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
               ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}  # fmt: skip
ASSETS = {path.name: (path.read_bytes(), MEDIA_TYPES[path.suffix]) for path in sorted(CONSOLE_DIR.iterdir())
          if path.suffix in MEDIA_TYPES}  # fmt: skip
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # A new release's page is fetched again rather than taken from a cache.
    "Cache-Control": "no-cache",
}

router = APIRouter()


def asset(name: str) -> Response:
    if name not in ASSETS:
        raise NotFound("No such console file.")
    content, media_type = ASSETS[name]
    return Response(content, media_type=media_type, headers=SECURITY_HEADERS)


@router.get("/console", include_in_schema=False)
async def console_page() -> Response:
    return asset("index.html")


@router.get("/console/{name}", include_in_schema=False)
async def console_asset(name: str) -> Response:
    return asset(name)


@router.get(
    "/api/v1/me",
    response_model=SignedIn,
    tags=["console"],
    responses=answers(401, 422),
    dependencies=[Depends(refuse_unknown_query_parameters)],
)
async def signed_in(caller: CallerDep, _operator: OperatorScheme, _tenant: TenantScheme) -> SignedIn:
    """Who these credentials are: the operator, or the tenant a key or console token acts for (and until when)."""
    if caller.tenant is None:
        return SignedIn(role="operator", tenant=None, expires_at=None)
    return SignedIn(role="tenant", tenant=read_tenant(caller.tenant), expires_at=caller.expires_at)
