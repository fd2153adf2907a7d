"""Creating, reading, changing and deleting tenants; credentials encrypted, the tenant key hashed."""

from fastapi.exceptions import RequestValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.crypto import SecretBox, hash_token, new_tenant_key
from app.errors import Conflict, invalid_field
from app.models import Tenant
from app.schemas.common import partner_url_problem
from app.schemas.tenant import (
    LuccaPatch,
    LuccaRead,
    OAuthPatch,
    RateLimitRead,
    TenantCreate,
    TenantCreated,
    TenantRead,
    TenantUpdate,
)


def check_upstream_url(url: str, allow_http: bool, loc: tuple[str, ...]) -> str:
    """A partner URL leads to the partner's public host (any host over http too with ALLOW_HTTP_UPSTREAMS, for
    sandboxes and tests); the 422 never repeats the URL, which may carry a password."""
    problem = partner_url_problem(url, allow_http)
    if problem is not None:
        raise invalid_field(loc, problem)
    return url.rstrip("/")


def secret_again(loc: tuple[str, ...], url_field: str) -> RequestValidationError:
    """The 422 of a changed partner URL without its secret: a stored secret never follows a URL to a new host."""
    return invalid_field(
        loc, f"give it again when {url_field} changes: a stored secret is only sent where it was given", kind="missing"
    )


async def list_tenants(session: AsyncSession, limit: int, after: str | None) -> tuple[list[TenantRead], str | None]:
    """A page of tenants by slug, and the slug to pass as `after` for the next page (None on the last one)."""
    query = select(Tenant).order_by(Tenant.slug).limit(limit + 1)
    if after is not None:
        query = query.where(Tenant.slug > after)
    found = list(await session.scalars(query))
    page = [read_tenant(tenant) for tenant in found[:limit]]
    return page, page[-1].slug if len(found) > limit else None


def read_tenant(tenant: Tenant) -> TenantRead:
    return TenantRead(
        slug=tenant.slug,
        name=tenant.name,
        timezone=tenant.timezone,
        lucca=LuccaRead(
            base_url=tenant.lucca_base_url,
            api_key_set=bool(tenant.lucca_api_key_encrypted),
            oauth_set=tenant.lucca_oauth_encrypted is not None,
            rate_limit=RateLimitRead(requests=tenant.rate_limit_requests, per_seconds=tenant.rate_limit_per_seconds),
        ),
        created_at=tenant.created_at,
    )


async def create_tenant(session: AsyncSession, box: SecretBox, body: TenantCreate, allow_http: bool) -> TenantCreated:
    """Create a tenant and return its key, this once."""
    key = new_tenant_key()
    oauth = body.lucca.oauth
    tenant = Tenant(
        slug=body.slug,
        name=body.name,
        timezone=body.timezone,
        key_hash=hash_token(key),
        lucca_base_url=check_upstream_url(body.lucca.base_url, allow_http, ("lucca", "base_url")),
        lucca_api_key_encrypted=box.encrypt(body.lucca.api_key.get_secret_value()),
        lucca_oauth_encrypted=box.encrypt_json(
            {"client_id": oauth.client_id, "client_secret": oauth.client_secret.get_secret_value()}
        )
        if oauth
        else None,
        rate_limit_requests=body.lucca.rate_limit.requests,
        rate_limit_per_seconds=body.lucca.rate_limit.per_seconds,
    )
    if await session.scalar(select(Tenant.id).where(Tenant.slug == body.slug)) is not None:
        raise Conflict(f"A tenant with slug {body.slug!r} already exists.")
    session.add(tenant)
    try:
        await session.flush()
    except IntegrityError:
        raise Conflict(f"A tenant with slug {body.slug!r} already exists.") from None
    return TenantCreated(**read_tenant(tenant).model_dump(), api_key=key)


def update_tenant(tenant: Tenant, box: SecretBox, body: TenantUpdate, allow_http: bool) -> TenantRead:
    """Apply any subset; nested objects are merged and a secret is replaced only when given."""
    if body.name is not None:
        tenant.name = body.name
    if body.timezone is not None:
        tenant.timezone = body.timezone
    lucca = body.lucca
    if lucca is not None:
        if lucca.base_url is not None:
            base_url = check_upstream_url(lucca.base_url, allow_http, ("lucca", "base_url"))
            if base_url != tenant.lucca_base_url:
                require_lucca_secrets(tenant, lucca)
            tenant.lucca_base_url = base_url
        if lucca.api_key is not None:
            tenant.lucca_api_key_encrypted = box.encrypt(lucca.api_key.get_secret_value())
        if lucca.rate_limit is not None:
            tenant.rate_limit_requests = lucca.rate_limit.requests or tenant.rate_limit_requests
            tenant.rate_limit_per_seconds = lucca.rate_limit.per_seconds or tenant.rate_limit_per_seconds
        if lucca.oauth is not None:
            tenant.lucca_oauth_encrypted = merge_oauth(tenant, box, lucca.oauth)
    return read_tenant(tenant)


def require_lucca_secrets(tenant: Tenant, lucca: LuccaPatch) -> None:
    """A new Lucca URL needs the API key again, and the OAuth client secret when OAuth is set."""
    missing = []
    if lucca.api_key is None:
        missing.append(secret_again(("lucca", "api_key"), "base_url"))
    has_oauth = tenant.lucca_oauth_encrypted is not None or lucca.oauth is not None
    if has_oauth and (lucca.oauth is None or lucca.oauth.client_secret is None):
        missing.append(secret_again(("lucca", "oauth", "client_secret"), "base_url"))
    if missing:
        raise RequestValidationError([error for exc in missing for error in exc.errors()])


def merge_oauth(tenant: Tenant, box: SecretBox, patch: OAuthPatch) -> str:
    stored = box.decrypt_json(tenant.lucca_oauth_encrypted)
    secret = patch.client_secret.get_secret_value() if patch.client_secret else None
    merged = {
        "client_id": patch.client_id or stored.get("client_id"),
        "client_secret": secret or stored.get("client_secret"),
    }
    if not merged["client_id"] or not merged["client_secret"]:
        raise invalid_field(("lucca", "oauth"), "client_id and client_secret are both needed")
    return box.encrypt_json(merged)
