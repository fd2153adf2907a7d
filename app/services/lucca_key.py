"""What needs Lucca's API key (contract section 4): writing employees and their records.

Lucca's OAuth API (v5) reads the directory but cannot create employees nor write their `e_` fields, so the hires
(Softgarden, Taleez) and the statistics push (Cards) need the legacy API's key. A tenant without one may not enable
them: the connector's PUT or PATCH, and the tenant's PATCH that would remove the key, answer 422 naming
`lucca.api_key`. Elevo works with OAuth alone: v5 has no `e_` fields, so its skip flag reads unchecked and its `e_`
extra columns empty (the README says so).
"""

from typing import Any

from fastapi.exceptions import RequestValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import invalid_field
from app.models import Connector, Tenant

KEY_LOC = ("lucca", "api_key")


def key_needed_by(kind: str, settings: dict[str, Any]) -> str | None:
    """What an enabled connector of `kind` with these settings does that needs the key, in words; None: nothing."""
    if kind == "softgarden":
        return "the Softgarden connector creates employees in Lucca"
    if kind == "taleez":
        return "the Taleez connector creates employees in Lucca"
    if kind == "cards" and (settings.get("stats_sync") or {}).get("enabled"):
        return "the Cards statistics push (stats_sync.enabled) writes employees' records in Lucca"
    return None


def key_missing(what: str) -> RequestValidationError:
    """The 422 naming `lucca.api_key`, saying what needs it."""
    return invalid_field(
        KEY_LOC,
        f"Lucca's API key is needed: {what}, which Lucca's OAuth API cannot do. Give the tenant lucca.api_key first.",
        kind="missing",
    )


def require_key(tenant: Tenant, what: str) -> None:
    """Refuse (422 naming `lucca.api_key`) what needs the key on a tenant without one."""
    if tenant.lucca_api_key_encrypted is None:
        raise key_missing(what)


def require_key_for_connector(tenant: Tenant, kind: str, enabled: bool, settings: dict[str, Any]) -> None:
    """A connector saved enabled with settings that need the key, on a tenant without one: 422."""
    what = key_needed_by(kind, settings) if enabled else None
    if what is not None:
        require_key(tenant, what)


async def connectors_needing_key(session: AsyncSession, tenant: Tenant) -> list[str]:
    """What the tenant's enabled connectors do that needs the key (empty when nothing does)."""
    enabled = await session.scalars(
        select(Connector).where(Connector.tenant_id == tenant.id, Connector.enabled.is_(True)).order_by(Connector.kind)
    )
    return [what for connector in enabled if (what := key_needed_by(connector.kind, connector.settings))]
