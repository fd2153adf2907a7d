"""Console links: a URL whose fragment carries a token acting as one tenant's key until it expires."""

import secrets
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.crypto import hash_token
from app.errors import Unauthorized
from app.models import Tenant
from app.models.base import utcnow
from app.models.console_link import ConsoleLink

# Starts like a tenant key, so every log line masks it the same way (app.logging), and says what it is.
TOKEN_PREFIX = "lct_console_"  # noqa: S105 (a prefix, not a secret)
DEFAULT_TTL_SECONDS = 3_600
MAX_TTL_SECONDS = 86_400
# Expired links are kept a while, so that using one says "expired" rather than "invalid".
KEEP_EXPIRED = timedelta(days=7)
EXPIRED = "This console link has expired: ask for a new one (a link is valid for a limited time)."


def is_console_token(token: str) -> bool:
    return token.startswith(TOKEN_PREFIX)


async def create_console_link(
    session: AsyncSession, tenant: Tenant, ttl_seconds: int, base_url: str
) -> tuple[str, datetime]:
    """A new link's URL (`<base>/console#token=…`) and expiry; only the token's hash is stored."""
    now = utcnow()
    await session.execute(
        delete(ConsoleLink).where(ConsoleLink.tenant_id == tenant.id, ConsoleLink.expires_at < now - KEEP_EXPIRED)
    )
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    link = ConsoleLink(
        tenant_id=tenant.id, token_hash=hash_token(token), expires_at=now + timedelta(seconds=ttl_seconds)
    )
    session.add(link)
    await session.flush()
    # The fragment never leaves the browser: the token reaches no server log through this URL.
    return f"{base_url.rstrip('/')}/console#token={token}", link.expires_at


async def console_link_tenant(session: AsyncSession, token: str) -> tuple[Tenant, datetime] | None:
    """The tenant a console token acts for, and until when (None for no such token); 401 once it has expired."""
    found = (
        await session.execute(
            select(Tenant, ConsoleLink.expires_at)
            .join(ConsoleLink, ConsoleLink.tenant_id == Tenant.id)
            .where(ConsoleLink.token_hash == hash_token(token), Tenant.deleted_at.is_(None))
        )
    ).one_or_none()
    if found is None:
        return None
    tenant, expires_at = found
    if expires_at <= utcnow():
        raise Unauthorized(EXPIRED)
    return tenant, expires_at
