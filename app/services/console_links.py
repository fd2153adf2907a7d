"""Console links: a URL whose fragment carries a token acting as one tenant's key until it expires, or until the
operator or the tenant key ends it."""

import secrets
import uuid
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import ColumnElement, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.crypto import hash_token
from app.errors import Conflict, NotFound, Unauthorized
from app.models import ConsoleLink, Tenant
from app.models.base import utcnow

# Starts like a tenant key, so every log line masks it the same way (app.logging), and says what it is.
TOKEN_PREFIX = "lct_console_"  # noqa: S105 (a prefix, not a secret)
DEFAULT_TTL_SECONDS = 3_600
MAX_TTL_SECONDS = 86_400
# Live links of one tenant at once: its listing stays short.
MAX_LIVE_LINKS = 100
# Expired links are kept a while, so that using one says "expired" rather than "invalid".
KEEP_EXPIRED = timedelta(days=7)
EXPIRED = "This console link has expired: ask for a new one (a link is valid for a limited time)."
MintedBy = Literal["operator", "tenant_key"]


def is_console_token(token: str) -> bool:
    return token.startswith(TOKEN_PREFIX)


def live_links(tenant: Tenant) -> ColumnElement[bool]:
    """The tenant's links that work now (expired ones are kept a while, but no longer count)."""
    return (ConsoleLink.tenant_id == tenant.id) & (ConsoleLink.expires_at > utcnow())


async def create_console_link(
    session: AsyncSession, tenant: Tenant, ttl_seconds: int, base_url: str, minted_by: MintedBy
) -> tuple[ConsoleLink, str]:
    """A new link and its URL (`<base>/console#token=…`); only the token's hash is stored."""
    now = utcnow()
    await session.execute(
        delete(ConsoleLink).where(ConsoleLink.tenant_id == tenant.id, ConsoleLink.expires_at < now - KEEP_EXPIRED)
    )
    live = (await session.execute(select(func.count()).where(live_links(tenant)))).scalar_one()
    if live >= MAX_LIVE_LINKS:
        raise Conflict(f"This tenant has {MAX_LIVE_LINKS} live console links: end some before making another.")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    link = ConsoleLink(
        tenant_id=tenant.id,
        token_hash=hash_token(token),
        expires_at=now + timedelta(seconds=ttl_seconds),
        minted_by=minted_by,
    )
    session.add(link)
    await session.flush()
    # The fragment never leaves the browser: the token reaches no server log through this URL.
    return link, f"{base_url.rstrip('/')}/console#token={token}"


async def list_console_links(session: AsyncSession, tenant: Tenant) -> list[ConsoleLink]:
    """The tenant's live links, newest first."""
    links = await session.scalars(
        select(ConsoleLink).where(live_links(tenant)).order_by(ConsoleLink.created_at.desc(), ConsoleLink.id)
    )
    return list(links)


async def end_console_link(session: AsyncSession, tenant: Tenant, link_id: uuid.UUID) -> None:
    """End one live link of the tenant at once; 404 for any other id (another tenant's, expired, unknown)."""
    ended = await session.execute(
        delete(ConsoleLink).where(live_links(tenant), ConsoleLink.id == link_id).returning(ConsoleLink.id)
    )
    if ended.first() is None:
        raise NotFound("No such live console link.")


async def end_console_links(session: AsyncSession, tenant: Tenant, minted_by: MintedBy | None = None) -> None:
    """End the tenant's live links at once (only those `minted_by` made, when given)."""
    ending = delete(ConsoleLink).where(live_links(tenant))
    if minted_by is not None:
        ending = ending.where(ConsoleLink.minted_by == minted_by)
    await session.execute(ending)


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
