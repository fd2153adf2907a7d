"""Who is calling: the operator (ADMIN_TOKEN), a tenant (its key), or a partner (a connector's webhook token)."""

import hmac
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

import asyncpg
from fastapi import Depends, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.crypto import hash_token
from app.db import SessionDep
from app.errors import Forbidden, NotFound, Unauthorized
from app.json_body import ReceivedBodyDep
from app.models import Tenant
from app.schemas.common import SLUG_PATTERN
from app.services.console_links import MintedBy, console_link_tenant, is_console_token
from app.services.tenants import find_tenant

UNAUTHORIZED = "Missing or invalid credentials."

# The bearer schemes the OpenAPI declares, so that /docs can "Authorize". They only document: every route reads
# the header itself (`bearer_token`), so a missing or wrong token is always the same 401.
OPERATOR_SCHEME = HTTPBearer(
    scheme_name="operatorToken", description="The operator token (`ADMIN_TOKEN`).", auto_error=False
)
TENANT_SCHEME = HTTPBearer(
    scheme_name="tenantKey",
    description="A tenant key, returned once by `POST /api/v1/tenants`, or a console link's token (it acts as the "
    "tenant's key until it expires); either acts on its own tenant only.",
    auto_error=False,
)
WEBHOOK_SCHEME = "softgardenWebhookToken"
WEBHOOK_SECURITY_SCHEME = {
    "type": "http",
    "scheme": "bearer",
    "description": "The Softgarden connector's webhook token, returned by its first PUT and by `rotate-token`.",
}
OperatorScheme = Annotated[HTTPAuthorizationCredentials | None, Depends(OPERATOR_SCHEME)]
TenantScheme = Annotated[HTTPAuthorizationCredentials | None, Depends(TENANT_SCHEME)]
SlugPath = Annotated[str, Path(pattern=SLUG_PATTERN, description="The tenant's slug.", examples=["acme"])]


@dataclass(frozen=True)
class Caller:
    is_operator: bool
    tenant: Tenant | None = None
    # Set for a console link's token: it acts as the tenant's key until then.
    expires_at: datetime | None = None

    @property
    def minted_by(self) -> MintedBy:
        """What the console links this caller makes say about who made them."""
        return "operator" if self.is_operator else "tenant_key"


def bearer_token(request: Request) -> str:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized(UNAUTHORIZED)
    return token.strip()


BearerTokenDep = Annotated[str, Depends(bearer_token)]


async def current_caller(request: Request, token: BearerTokenDep, _: ReceivedBodyDep, session: SessionDep) -> Caller:
    """The operator, or the tenant whose key (or unexpired console token) this is; the body has arrived first, so
    no slow sender holds a database connection (its problems are answered after this check, by `json_body`)."""
    admin_token = request.app.state.settings.admin_token
    if admin_token is not None and hmac.compare_digest(token.encode(), admin_token.get_secret_value().encode()):
        return Caller(is_operator=True)
    if is_console_token(token):
        found = await console_link_tenant(session, token)
        if found is None:
            raise Unauthorized(UNAUTHORIZED)
        return Caller(is_operator=False, tenant=found[0], expires_at=found[1])
    tenant = await find_tenant(session, Tenant.key_hash == hash_token(token))
    if tenant is None:
        raise Unauthorized(UNAUTHORIZED)
    return Caller(is_operator=False, tenant=tenant)


CallerDep = Annotated[Caller, Depends(current_caller)]


def require_operator(caller: CallerDep, _: OperatorScheme) -> Caller:
    if not caller.is_operator:
        raise Forbidden("Only the operator may do this.")
    return caller


NOT_WITH_A_CONSOLE_LINK = (
    "A console link cannot make or end links, nor rotate the tenant key: sign in with the tenant key or ask the "
    "operator."
)


def require_key_or_operator(caller: CallerDep) -> Caller:
    """The operator or the tenant's own key: a console link's token manages no credentials, so that a link never
    outlives its expiry nor locks out whoever gave it."""
    if caller.expires_at is not None:
        raise Forbidden(NOT_WITH_A_CONSOLE_LINK)
    return caller


async def tenant_in_path(
    caller: CallerDep, slug: SlugPath, session: SessionDep, _operator: OperatorScheme, _tenant: TenantScheme
) -> Tenant:
    """The tenant named in the path; another tenant's key sees it exactly as if it did not exist."""
    if caller.tenant is not None:
        if caller.tenant.slug != slug:
            raise NotFound("Tenant not found.")
        return caller.tenant
    tenant = await find_tenant(session, Tenant.slug == slug)
    if tenant is None:
        raise NotFound("Tenant not found.")
    return tenant


TenantDep = Annotated[Tenant, Depends(tenant_in_path)]


WEBHOOK_TARGET = """
    SELECT connectors.tenant_id, connectors.enabled, (connectors.settings -> 'hire_statuses')::text AS hire_statuses,
           tenants.timezone
    FROM connectors JOIN tenants ON tenants.id = connectors.tenant_id
    WHERE connectors.kind = $1 AND connectors.webhook_token_hash = $2 AND tenants.deleted_at IS NULL
"""


@dataclass(frozen=True)
class WebhookTarget:
    """What a webhook needs of its connector and tenant, read in one query."""

    tenant_id: uuid.UUID
    timezone: str
    # The one setting a webhook reads (Softgarden's), as stored: JSON text or None; the run reads the others.
    hire_statuses: str | None


async def webhook_target(connection: asyncpg.Connection, kind: str, token: str) -> WebhookTarget:
    """The enabled connector of `kind` owning this token (looked up by its hash, never compared raw)."""
    row = await connection.fetchrow(WEBHOOK_TARGET, kind, hash_token(token))
    if row is None:
        raise Unauthorized(UNAUTHORIZED)
    if not row["enabled"]:
        raise Forbidden("This connector is disabled.")
    return WebhookTarget(tenant_id=row["tenant_id"], timezone=row["timezone"], hire_statuses=row["hire_statuses"])
