"""The alerts' jobs: sending one delivery, and the tick that re-queues due deliveries and makes daily reminders."""

import logging
import uuid
from datetime import timedelta

from arq import Retry

from app.alerts import checks, problems
from app.alerts.delivery import deliver, due_deliveries
from app.queue import enqueue_alerts
from app.services.context import Services
from app.workers.tasks import JobContext

log = logging.getLogger(__name__)


async def alerts_deliver(ctx: JobContext, delivery_id: str) -> None:
    """alerts.deliver: send one alert to one channel; a failure comes back on the delivery's backoff."""
    services: Services = ctx["services"]
    delay = await deliver(services, uuid.UUID(delivery_id))
    if delay is not None:
        raise Retry(defer=timedelta(seconds=delay))


async def alerts_tick(ctx: JobContext) -> int:
    """alerts.tick: make the daily reminders of problems still open, and queue every delivery that is due (its
    job lost, or Redis down when it was made)."""
    services: Services = ctx["services"]
    async with services.sessionmaker.begin() as session:
        reminders = await problems.remind(session)
    async with services.sessionmaker() as session:
        due = await due_deliveries(session)
    await enqueue_alerts(services.redis, due)
    if reminders:
        log.info("alerts: %d reminder(s) of problems open for a day", len(reminders))
    return len(due)


async def alerts_check(ctx: JobContext) -> int:
    """alerts.check: open (or resolve) the problems no run reports: the directory's lag, schedules that missed
    their day."""
    services: Services = ctx["services"]
    deliveries = await checks.check_everything(services)
    await enqueue_alerts(services.redis, deliveries)
    return len(deliveries)
