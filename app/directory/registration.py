"""Registering a tenant's endpoint with Lucca's webhooks, watching it, and registering it again when Lucca stops
delivering to it (CONTRACT 13).

A tenant with `oauth` gets one endpoint when `PUBLIC_BASE_URL` is set, once its first full sync has completed:
`POST /lucca-api/webhook-endpoints` with a fresh random token in the URL. The token's hash is stored before Lucca is
asked, since Lucca may send the activation echo before it answers; the secret it returns signs every delivery
and is kept encrypted. Status: `pending` until Lucca says the endpoint is `active`, `failed` in plain words. The
safety-net poll looks at the endpoint every 15 minutes: suspended, inactive, missing, or at a URL that is not
under the current `PUBLIC_BASE_URL`, it is registered again (a new token and endpoint; the old one is forgotten).
"""

import logging
import uuid

from app.alerts.sources import lucca_webhook_noted
from app.clients.http import PartnerAuthFailed, PartnerRejected, PartnerUnavailable
from app.clients.lucca_v5 import WEBHOOK_SCOPES, LuccaV5Client, WebhookEndpoint
from app.crypto import hash_token, new_webhook_token
from app.directory import store
from app.directory.webhooks import WEBHOOK_PATH, webhook_url
from app.models import Tenant
from app.models.directory import DirectoryState
from app.queue import enqueue_alerts
from app.services.context import Services

log = logging.getLogger(__name__)

ENDPOINT_NAME = "lucca-connectors"
API_VERSION = "2024-11-01"
# What changes a person, their contract or position, or a department, as the contract names them (section 13): one
# pattern per resource, each standing for its `.created`, `.updated` and `.deleted` topics (lucca-v5.md 7.2).
TOPICS = ("employee.*", "employment.*", "job-position.*", "department.*")
# While Lucca has not activated a new endpoint, it is looked at again this often, this many times.
ACTIVATION_CHECK_SECONDS = 2.0
ACTIVATION_CHECKS = 30
UNAVAILABLE_RETRY_SECONDS = 30.0
GONE_STATUSES = frozenset({"suspended", "inactive"})
RETRY_FAILED_SECONDS = 900


async def register_endpoint(services: Services, tenant_id: uuid.UUID) -> float | None:
    """Register the tenant's endpoint (or look whether Lucca activated the one just registered); returns the
    seconds after which to look again, or None when there is nothing more to do."""
    base_url = services.settings.public_base_url
    async with services.sessionmaker.begin() as session:
        tenant = await session.get(Tenant, tenant_id)
        if base_url is None or tenant is None or tenant.deleted_at is not None or tenant.lucca_oauth_encrypted is None:
            return None
        state = await store.ensure_state(session, tenant_id, lock=True)
        if state.webhook_status == "pending" and state.webhook_endpoint_id and under(state.webhook_url, base_url):
            return await watch_activation(services, tenant, state.webhook_endpoint_id)
        # The token first, committed: Lucca's activation echo may come before Lucca answers.
        token = new_webhook_token()
        url = webhook_url(base_url, token)
        forget_endpoint(state, "Registering the endpoint with Lucca.")
        state.webhook_token_hash = hash_token(token)
        state.webhook_url = url
    try:
        endpoint = await endpoints_of(services, tenant).create_webhook_endpoint(ENDPOINT_NAME, url, list(TOPICS))
    except PartnerUnavailable as outage:
        await set_status(services, tenant_id, "pending", f"{outage.message}; trying again.")
        return outage.retry_after or UNAVAILABLE_RETRY_SECONDS
    except PartnerRejected as refusal:
        await set_status(services, tenant_id, "failed", refused_words(refusal))
        return None
    async with services.sessionmaker.begin() as session:
        state = await store.ensure_state(session, tenant_id, lock=True)
        if state.webhook_url != url:
            return None  # registered again meanwhile: this endpoint is forgotten
        state.webhook_endpoint_id = endpoint.id
        state.webhook_secret_encrypted = services.box.encrypt(endpoint.secret or "")
        activated = endpoint.status == "active"
        state.webhook_status = "active" if activated else "pending"
        state.webhook_message = None if activated else "Waiting for Lucca to activate the endpoint."
        deliveries = await lucca_webhook_noted(session, tenant_id, None) if activated else []
    await enqueue_alerts(services.redis, deliveries)
    log.info("registered Lucca webhook endpoint %s for tenant %s (%s)", endpoint.id, tenant.slug, endpoint.status)
    return None if activated else ACTIVATION_CHECK_SECONDS


async def watch_activation(services: Services, tenant: Tenant, endpoint_id: str) -> float | None:
    """Lucca activates an endpoint once it has answered the echo: `active` then; still waiting after a minute,
    `failed`, saying what to check."""
    try:
        endpoint = await endpoints_of(services, tenant).get_webhook_endpoint(endpoint_id)
    except PartnerUnavailable as outage:
        return outage.retry_after or UNAVAILABLE_RETRY_SECONDS
    except PartnerRejected as refusal:
        await set_status(services, tenant.id, "failed", refused_words(refusal))
        return None
    if endpoint.status == "active":
        await set_status(services, tenant.id, "active", None)
        return None
    checks = await services.redis.incr(f"lucca-webhook-checks:{tenant.id}")
    await services.redis.expire(f"lucca-webhook-checks:{tenant.id}", 600)
    if checks < ACTIVATION_CHECKS:
        return ACTIVATION_CHECK_SECONDS
    message = (
        "Lucca has not activated the webhook endpoint: check that PUBLIC_BASE_URL "
        f"({services.settings.public_base_url}) is reachable from the internet. The directory is polled meanwhile."
    )
    await set_status(services, tenant.id, "failed", message)
    return None


async def needs_registration(services: Services, tenant_id: uuid.UUID) -> bool:
    """The safety net's look at the tenant's endpoint: True when it must be registered again (Lucca suspended or
    lost it, its URL is not under the current `PUBLIC_BASE_URL`), its activation watched (`pending`), or a failed
    registration tried again (every 15 minutes)."""
    base_url = services.settings.public_base_url
    async with services.sessionmaker() as session:
        tenant = await session.get(Tenant, tenant_id)
        state = await store.state(session, tenant_id)
    if base_url is None or tenant is None or tenant.lucca_oauth_encrypted is None or state is None:
        return False
    if state.webhook_status == "failed":
        return bool(await services.redis.set(f"lucca-webhook-retry:{tenant_id}", 1, nx=True, ex=RETRY_FAILED_SECONDS))
    if state.webhook_status != "active" or state.webhook_endpoint_id is None or not under(state.webhook_url, base_url):
        return state.webhook_status != "none"
    try:
        endpoint: WebhookEndpoint | None = await endpoints_of(services, tenant).get_webhook_endpoint(
            state.webhook_endpoint_id
        )
    except PartnerUnavailable:
        return False  # the next safety net looks again
    except PartnerRejected as refusal:
        if refusal.status not in (404, 410):
            await set_status(services, tenant_id, "failed", refused_words(refusal))
            return False
        endpoint = None
    if endpoint is not None and endpoint.status not in GONE_STATUSES:
        return False
    why = "missing" if endpoint is None else endpoint.status
    log.info("Lucca webhook endpoint of tenant %s is %s: registering it again", tenant.slug, why)
    return True


def endpoints_of(services: Services, tenant: Tenant) -> LuccaV5Client:
    """The OAuth API with a token for the webhook endpoints only (a client without that scope fails alone)."""
    return services.lucca_v5(tenant, scopes=WEBHOOK_SCOPES)


def under(url: str | None, base_url: str) -> bool:
    return url is not None and url.startswith(f"{base_url}{WEBHOOK_PATH}/")


def forget_endpoint(state: DirectoryState, message: str) -> None:
    state.webhook_status = "pending"
    state.webhook_message = message
    state.webhook_endpoint_id = None
    state.webhook_secret_encrypted = None


def refused_words(refusal: PartnerRejected) -> str:
    """Why Lucca refused the endpoint, and what to do, in words an HR admin can act on."""
    said = refusal.message.rstrip(". ")
    scope = WEBHOOK_SCOPES[0]
    refused_client = isinstance(refusal, PartnerAuthFailed) or refusal.status in (401, 403)
    advice = f" Give the OAuth client the scope {scope} in Lucca's integration keys." if refused_client else ""
    if scope in said:
        advice = ""  # the refusal names it already
    return f"Lucca refused to register the webhook endpoint: {said}.{advice} The directory is polled meanwhile."


async def set_status(services: Services, tenant_id: uuid.UUID, status: str, message: str | None) -> None:
    """The endpoint's state; `failed` opens (or counts) the subscription's problem, `active` resolves it."""
    async with services.sessionmaker.begin() as session:
        state = await store.ensure_state(session, tenant_id, lock=True)
        state.webhook_status = status
        state.webhook_message = message
        deliveries: list[uuid.UUID] = []
        if status == "failed":
            deliveries = await lucca_webhook_noted(session, tenant_id, message or "Lucca refused the endpoint.")
        elif status == "active":
            deliveries = await lucca_webhook_noted(session, tenant_id, None)
    await enqueue_alerts(services.redis, deliveries)
