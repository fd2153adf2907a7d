"""The jobs that keep each tenant's directory copy fresh: the poller's pass, a poll, Lucca's events, the webhook's
registration. Each takes a tenant id and is safe to run twice."""

import asyncio
import logging
import uuid
from datetime import timedelta

from arq import Retry

from app.clients.http import PartnerAuthFailed, PartnerError, PartnerUnavailable
from app.directory import registration
from app.directory.events import apply_events
from app.directory.polling import claim_due_polls, note_problem, poll_tenant, unapplied_event_tenants
from app.queue import enqueue_job, enqueue_lucca_events
from app.services import cards_follow, elevo
from app.services.context import Services
from app.workers.tasks import JobContext, job_deadline

log = logging.getLogger(__name__)

POLL_TENANT = "directory.poll"
REGISTER_WEBHOOK = "lucca_webhooks.register"
ELEVO_PUSH = "elevo.push"
CARDS_FOLLOW = "cards.follow"
# Events stored this long ago and not applied: their job was lost (Redis down, a worker died); queued again.
EVENTS_LEFT_AFTER = timedelta(seconds=3)
# An event batch that Lucca refused (a missing scope, a refused client) is tried again this much later.
REFUSED_RETRY_SECONDS = 300.0
UNAVAILABLE_RETRY_SECONDS = 5.0


async def directory_poll_due(ctx: JobContext) -> int:
    """directory.poll_due (every 2 s): queue the polls that are due, the webhook registrations to make, and the
    application of events whose job was lost; and, for tenants whose copy changed, Cards' auto_sync and Elevo's
    files on change (push_on_change)."""
    services: Services = ctx["services"]
    due = await claim_due_polls(services.sessionmaker, webhooks_on=services.settings.public_base_url is not None)
    for tenant_id in due.polls:
        await enqueue_job(services.redis, POLL_TENANT, f"directory-poll:{tenant_id}", tenant_id)
    for tenant_id in due.registrations:
        await enqueue_job(services.redis, REGISTER_WEBHOOK, f"lucca-webhook:{tenant_id}", tenant_id)
    async with services.sessionmaker() as session:
        left = await unapplied_event_tenants(session, EVENTS_LEFT_AFTER)
    for tenant_id in left:
        await enqueue_lucca_events(services.redis, tenant_id)
    async with services.sessionmaker() as session:
        pushes = await elevo.due_pushes(session)
    for push in pushes:
        # One job per tenant: changes arriving until it runs are in the file it builds.
        job_id = f"elevo-push:{push.tenant_id}"
        await enqueue_job(services.redis, ELEVO_PUSH, job_id, push.tenant_id, defer_seconds=push.defer_seconds)
    async with services.sessionmaker.begin() as session:
        follows = await cards_follow.due_follows(session)
    for tenant_id in follows:
        # One job per tenant, a few seconds on: the changes arriving meanwhile share its run.
        job_id = f"cards-follow:{tenant_id}"
        await enqueue_job(services.redis, CARDS_FOLLOW, job_id, tenant_id, defer_seconds=cards_follow.GATHER_SECONDS)
    return len(due.polls)


async def cards_follow_changes(ctx: JobContext, tenant_id: str) -> str | None:
    """cards.follow: Cards' auto_sync for a tenant whose copy changed (a changes run when Cards must follow)."""
    services: Services = ctx["services"]
    run_id = await cards_follow.plan_changes(services, uuid.UUID(tenant_id))
    return str(run_id) if run_id is not None else None


async def elevo_push(ctx: JobContext, tenant_id: str) -> str | None:
    """elevo.push: Elevo's push_on_change for a tenant whose copy changed (a run on change when the file would)."""
    services: Services = ctx["services"]
    run_id = await elevo.push_changes(services, uuid.UUID(tenant_id))
    return str(run_id) if run_id is not None else None


async def directory_poll(ctx: JobContext, tenant_id: str) -> int:
    """directory.poll: one poll of a tenant's directory (and, beside webhooks, a look at the endpoint)."""
    services: Services = ctx["services"]
    calls = await poll_tenant(services, uuid.UUID(tenant_id), job_deadline(services))
    if await registration.needs_registration(services, uuid.UUID(tenant_id)):
        await enqueue_job(services.redis, REGISTER_WEBHOOK, f"lucca-webhook:{tenant_id}", uuid.UUID(tenant_id))
    return calls


async def lucca_events_apply(ctx: JobContext, tenant_id: str) -> int:
    """lucca_events.apply: apply a tenant's stored Lucca events; Lucca failing leaves them for a later attempt."""
    services: Services = ctx["services"]
    tenant = uuid.UUID(tenant_id)
    try:
        async with asyncio.timeout(job_deadline(services)):
            return await apply_events(services, tenant)
    except TimeoutError:
        raise Retry(defer=0) from None  # what is applied stays applied: the rest in a new attempt
    except PartnerError as error:
        refused_by = error.partner if isinstance(error, PartnerAuthFailed) else None
        await note_problem(services, tenant, error.message, refused_by=refused_by)
        wait = REFUSED_RETRY_SECONDS
        if isinstance(error, PartnerUnavailable):
            wait = error.retry_after or UNAVAILABLE_RETRY_SECONDS
        log.info("Lucca events of tenant %s wait %.0f s: %s", tenant_id, wait, error.message)
        raise Retry(defer=timedelta(seconds=wait)) from None


async def lucca_webhooks_register(ctx: JobContext, tenant_id: str) -> None:
    """lucca_webhooks.register: register the tenant's endpoint with Lucca (or again), then watch it activate."""
    services: Services = ctx["services"]
    delay = await registration.register_endpoint(services, uuid.UUID(tenant_id))
    if delay is not None:
        raise Retry(defer=timedelta(seconds=delay))
