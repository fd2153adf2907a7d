"""Delivering alerts (contract 14): each delivery is sent by whichever worker claims it first, exactly once.

The claim is a row lock (`FOR UPDATE SKIP LOCKED`) held while sending: a second worker given the same delivery skips
it, and a worker that dies lets go of it with its connection, so the delivery is taken up again. A failure is
retried on the backoff of partner calls (contract 1: Retry-After honoured), its attempts and error recorded, and
the delivery fails for good after the give-up time (15 minutes) or at once when retrying cannot help.
"""

import logging
import uuid
from datetime import timedelta
from typing import cast

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.alerts.message import AlertMessage, Event
from app.alerts.problems import console_url
from app.alerts.senders import AlertNotSent, send
from app.metrics import metrics
from app.models import AlertChannel, AlertDelivery, AlertProblem, Tenant
from app.models.base import utcnow
from app.services.context import Services

log = logging.getLogger(__name__)

# Deliveries re-queued by one tick at most (the next tick takes the rest).
DUE_PER_TICK = 1000


async def deliver(services: Services, delivery_id: uuid.UUID) -> float | None:
    """Send one pending delivery unless another worker is sending it; returns the seconds until its next attempt
    when it failed and will be tried again, else None (sent, failed for good, or not this worker's)."""
    async with services.sessionmaker.begin() as session:
        found = await session.execute(
            select(AlertDelivery, AlertChannel, AlertProblem, Tenant)
            .join(AlertChannel, AlertChannel.id == AlertDelivery.channel_id)
            .join(AlertProblem, AlertProblem.id == AlertDelivery.problem_id)
            .join(Tenant, Tenant.id == AlertDelivery.tenant_id)
            .where(AlertDelivery.id == delivery_id, AlertDelivery.status == "pending", Tenant.deleted_at.is_(None))
            .with_for_update(of=AlertDelivery, skip_locked=True)
        )
        row = found.first()
        if row is None:
            return None
        delivery, channel, problem, tenant = row
        now = utcnow()
        if delivery.next_attempt_at > now:
            return (delivery.next_attempt_at - now).total_seconds()
        message = alert_message(services, delivery, problem, tenant)
        delivery.attempts += 1
        try:
            await send(services, channel, message)
        except AlertNotSent as failure:
            return note_failure(services, delivery, channel, failure)
        except Exception:
            # A fault of ours: recorded and retried like a receiver's, so it too gives up in the end.
            log.exception("alert delivery %s stopped on an unexpected error; it will be tried again", delivery_id)
            fault = AlertNotSent("An unexpected error stopped the sending; it will be tried again.", retryable=True)
            return note_failure(services, delivery, channel, fault)
        delivery.status = "sent"
        delivery.sent_at = utcnow()
        delivery.error = None
        metrics.inc("alerts_sent_total", channel=channel.kind, event=delivery.event)
        return None


def note_failure(
    services: Services, delivery: AlertDelivery, channel: AlertChannel, failure: AlertNotSent
) -> float | None:
    """Record the failed attempt; the seconds until the next one, or None once it failed for good."""
    now = utcnow()
    delivery.error = failure.message
    delivery.failing_since = delivery.failing_since or now
    retry = services.retry
    if not failure.retryable or now - delivery.failing_since >= timedelta(seconds=retry.give_up_seconds):
        delivery.status = "failed"
        metrics.inc("alerts_failed_total", channel=channel.kind, event=delivery.event)
        return None
    delay = retry.wait(delivery.attempts, failure.retry_after)
    delivery.next_attempt_at = now + timedelta(seconds=delay)
    return delay


def alert_message(services: Services, delivery: AlertDelivery, problem: AlertProblem, tenant: Tenant) -> AlertMessage:
    """What the alert says, as the problem stands now (its count and latest reason)."""
    run_id = problem.resolved_by_run_id if delivery.event == "resolved" else problem.last_run_id
    return AlertMessage(
        id=delivery.id,
        event=cast(Event, delivery.event),
        tenant_slug=tenant.slug,
        tenant_name=tenant.name,
        problem_id=problem.id,
        kind=problem.kind,
        source=problem.source,
        title=problem.title,
        message=problem.message,
        count=problem.count,
        opened_at=problem.opened_at,
        resolved_at=problem.resolved_at,
        console_url=console_url(services.settings.public_base_url, tenant.slug, run_id),
    )


async def due_deliveries(session: AsyncSession) -> list[uuid.UUID]:
    """Pending deliveries whose attempt is due (their job lost, or Redis down when they were made)."""
    found = await session.scalars(
        select(AlertDelivery.id)
        .join(Tenant, Tenant.id == AlertDelivery.tenant_id)
        .where(
            AlertDelivery.status == "pending", AlertDelivery.next_attempt_at <= utcnow(), Tenant.deleted_at.is_(None)
        )
        .order_by(AlertDelivery.next_attempt_at)
        .limit(DUE_PER_TICK)
    )
    return list(found)
