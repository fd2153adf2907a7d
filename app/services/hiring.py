"""Running the hire pipeline for a tenant: its Lucca client, its lock, and the link to the partner record."""

from datetime import datetime
from functools import partial
from zoneinfo import ZoneInfo

from app.models import Tenant
from app.services.context import Services
from app.services.hire import HireRequest, hire_candidate
from app.services.links import find_linked_user, save_link
from app.services.locks import tenant_lock
from app.services.run_log import RunLog


async def hire_and_link(services: Services, tenant: Tenant, log: RunLog, request: HireRequest) -> None:
    """Hire (or link) the candidate; remember which Lucca user the partner record became."""
    linked = await find_linked_user(services.sessionmaker, tenant.id, request.partner, request.external_id)
    user = await hire_candidate(
        services.lucca(tenant),
        log,
        request,
        today=datetime.now(ZoneInfo(tenant.timezone)).date(),
        tenant_lock=partial(tenant_lock, services.engine, "hire", tenant.id),
        linked_user_id=linked,
    )
    if user is not None:
        await save_link(services.sessionmaker, tenant.id, request.partner, request.external_id, user.id)
