"""Lucca → Elevo: the people file over SFTP (contract section 10)."""

from app.models import Connector, Run, Tenant
from app.services.context import Services
from app.services.run_log import RunLog

SOURCE = "elevo"
PEOPLE_SYNC = "people_sync"


async def process_people_sync(services: Services, run: Run, tenant: Tenant, connector: Connector, log: RunLog) -> None:
    raise NotImplementedError
