"""Running the hire pipeline for a tenant: its Lucca client, the account's lock, and the link to the partner record."""

from dataclasses import replace
from datetime import datetime
from zoneinfo import ZoneInfo

from app.clients.lucca import LuccaUser
from app.clients.lucca_directory import person_from_v3
from app.db import Sessionmaker
from app.directory import store
from app.models import Tenant
from app.models.base import utcnow
from app.services.context import Services
from app.services.hire import HireRequest, hire_candidate, refused_before_lucca
from app.services.links import find_linked_user, save_link
from app.services.locks import account_lock
from app.services.run_log import RunLog

LOCK_SCOPE = "hire"


async def hire_and_link(services: Services, tenant: Tenant, log: RunLog, request: HireRequest) -> None:
    """Hire (or link) the candidate; remember which Lucca user the partner record became.

    One hire at a time per Lucca account, whichever tenant sends it: reading the link, looking the person up in
    Lucca, creating them and writing the link all happen under the account's lock, so a second run for the same
    person (another import, another tenant on the same account) starts only once the first one's user and link
    are there to be found. A busy lock raises LockBusy, and the run is tried again shortly. The lock is the
    account's only once Lucca has accepted the tenant's key, so a key naming another's account never holds it.
    """
    if await refused_before_lucca(log, request):
        return
    today = datetime.now(ZoneInfo(tenant.timezone)).date()
    lucca = services.lucca(tenant)
    async with account_lock(services.engine, services.redis, LOCK_SCOPE, await lucca.proven_account()):
        linked = await find_linked_user(services.sessionmaker, tenant.id, request.partner, request.external_id)
        hired = await hire_candidate(lucca, log, request, today=today, linked_user_id=linked)
        if hired is not None:
            await save_link(services.sessionmaker, tenant.id, request.partner, request.external_id, hired.user.id)
            if hired.created:
                await add_to_directory(services.sessionmaker, tenant, hired.user)


async def add_to_directory(sessionmaker: Sessionmaker, tenant: Tenant, user: LuccaUser) -> None:
    """Put the employee this run created in the tenant's directory copy at once (when the tenant has one), as
    Lucca holds them now: its readers (Cards, Elevo) see the hire without waiting for the next poll."""
    now = utcnow()
    async with sessionmaker.begin() as session:
        if await store.state(session, tenant.id) is None:
            return
        person = replace(person_from_v3(user), modified_at=now)
        if (await store.upsert_people(session, tenant.id, [person], read_at=now)).changed:
            await store.note_change(session, tenant.id, now)
