"""Cards → Lucca: learning events in, training statistics pushed to each employee's record (contract section 9)."""

from app.models import Connector, Run, Tenant
from app.services.context import Services
from app.services.run_log import RunLog

SOURCE = "cards"
STATS_SYNC = "stats_sync"


async def process_stats_sync(services: Services, run: Run, tenant: Tenant, connector: Connector, log: RunLog) -> None:
    raise NotImplementedError
