"""Lucca → Cards: employees as Cards users, departments as groups (contract section 9)."""

from app.models import Connector, Run, Tenant
from app.services.context import Services
from app.services.run_log import RunLog

SOURCE = "cards"
USERS_IMPORT = "users_import"
DEPARTMENTS_IMPORT = "departments_import"


async def process_users_import(services: Services, run: Run, tenant: Tenant, connector: Connector, log: RunLog) -> None:
    raise NotImplementedError


async def process_departments_import(
    services: Services, run: Run, tenant: Tenant, connector: Connector, log: RunLog
) -> None:
    raise NotImplementedError
