"""The tenant's directory copy filled the way a completed full sync leaves it, for tests of its readers."""

from sqlalchemy import select

from app.clients.lucca_directory import LegacyDirectory
from app.config import Settings
from app.directory import store
from app.models import Tenant
from app.models.base import utcnow
from app.services.context import Services


async def fill_directory(slug: str) -> None:
    """Read the tenant's Lucca (the sandbox) whole into its copy and mark the copy complete."""
    services = Services.start(Settings(), pool_size=2)
    try:
        async with services.sessionmaker.begin() as session:
            tenant = await session.scalar(select(Tenant).where(Tenant.slug == slug))
            assert tenant is not None
            reader = LegacyDirectory(services.lucca(tenant))
            read_at = utcnow()
            async for page in reader.employee_pages():
                await store.upsert_people(session, tenant.id, page, read_at=read_at)
            await store.upsert_departments(session, tenant.id, await reader.departments(), read_at=read_at)
            state = await store.ensure_state(session, tenant.id, lock=True)
            state.last_full_sync_at = state.fresh_at = read_at
    finally:
        await services.close()
