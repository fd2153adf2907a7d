"""A tenant's alert channels: the list a PUT replaces, read back without secrets, and a test alert to each."""

import asyncio
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.ext.asyncio import AsyncSession

from app.alerts.message import AlertMessage
from app.alerts.senders import AlertNotSent, send
from app.config import Settings
from app.crypto import SecretBox, new_signing_secret
from app.errors import invalid_field
from app.models import Tenant
from app.models.alert import AlertChannel, AlertDelivery
from app.schemas.alerts import (
    AlertsPut,
    AlertsRead,
    AlertsTested,
    ChannelPut,
    ChannelRead,
    ChannelTested,
    EmailChannel,
    LastAlert,
)
from app.schemas.common import partner_url_problem
from app.services.context import Services

# Slack's and Teams' URLs are their own credential: they are shown as their host and this.
MASK = "…"
SECRET_URL_KINDS = ("slack", "teams")


@dataclass(frozen=True)
class Wanted:
    """One channel of a PUT, checked: its addresses or its full URL (a masked one replaced by the stored URL)."""

    kind: str
    recipients: list[str]
    url: str | None


def shown_url(kind: str, url: str) -> str:
    """How GET shows a channel's URL: a webhook's in full; Slack's and Teams' as their host and "…"."""
    if kind not in SECRET_URL_KINDS:
        return url
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}/{MASK}"


async def channels_of(session: AsyncSession, tenant: Tenant) -> list[AlertChannel]:
    """The tenant's channels, in their order."""
    query = select(AlertChannel).where(AlertChannel.tenant_id == tenant.id).order_by(AlertChannel.position)
    return list(await session.scalars(query))


async def read_alerts(session: AsyncSession, tenant: Tenant, secrets: dict[uuid.UUID, str] | None = None) -> AlertsRead:
    """The tenant's channels in their order, each with its latest alert; `secrets`: new webhook secrets to show."""
    channels = await channels_of(session, tenant)
    latest = await latest_alerts(session, [channel.id for channel in channels])
    return AlertsRead(
        channels=[
            ChannelRead(
                id=channel.id,
                kind=channel.kind,
                to=channel.recipients if channel.kind == "email" else None,
                url=channel.url_shown,
                secret=(secrets or {}).get(channel.id),
                last_alert=latest.get(channel.id),
            )
            for channel in channels
        ]
    )


async def latest_alerts(session: AsyncSession, channel_ids: list[uuid.UUID]) -> dict[uuid.UUID, LastAlert]:
    """Each channel's latest delivery (by the index on channel_id)."""
    if not channel_ids:
        return {}
    deliveries = await session.scalars(
        select(AlertDelivery)
        .where(AlertDelivery.channel_id.in_(channel_ids))
        .ext(distinct_on(AlertDelivery.channel_id))
        .order_by(AlertDelivery.channel_id, AlertDelivery.created_at.desc())
    )
    return {
        delivery.channel_id: LastAlert(
            event=delivery.event,
            status=delivery.status,
            attempts=delivery.attempts,
            error=delivery.error,
            at=delivery.sent_at or delivery.created_at,
        )
        for delivery in deliveries
    }


async def put_alerts(
    session: AsyncSession, box: SecretBox, tenant: Tenant, body: AlertsPut, settings: Settings
) -> AlertsRead:
    """Replace the tenant's channels. A channel given again as it was (same kind and addresses or URL) keeps its id,
    its alerts and, for a webhook, its signing secret; a new webhook gets a secret, shown in this answer only."""
    # One PUT at a time per tenant; FOR NO KEY UPDATE leaves the tenant's other rows free to reference it.
    await session.execute(select(Tenant.id).where(Tenant.id == tenant.id).with_for_update(key_share=True))
    stored = await channels_of(session, tenant)
    urls = {channel.id: box.decrypt(channel.url_encrypted) for channel in stored if channel.url_encrypted}
    # Everything is checked before anything changes.
    wanted = [wanted_channel(position, given, stored, urls, settings) for position, given in enumerate(body.channels)]
    unused = list(stored)
    secrets: dict[uuid.UUID, str] = {}
    for position, want in enumerate(wanted):
        same = next((channel for channel in unused if is_same(channel, urls.get(channel.id), want)), None)
        if same is not None:
            unused.remove(same)
            same.position = position
            continue
        channel = AlertChannel(id=uuid.uuid4(), tenant_id=tenant.id, position=position, kind=want.kind)
        channel.recipients = want.recipients
        if want.url is not None:
            channel.url_encrypted = box.encrypt(want.url)
            channel.url_shown = shown_url(want.kind, want.url)
        if want.kind == "webhook":
            secrets[channel.id] = new_signing_secret()
            channel.secret_encrypted = box.encrypt(secrets[channel.id])
        session.add(channel)
    for channel in unused:
        await session.delete(channel)
    await session.flush()
    return await read_alerts(session, tenant, secrets)


def wanted_channel(
    position: int,
    given: ChannelPut,
    stored: list[AlertChannel],
    urls: dict[uuid.UUID, str],
    settings: Settings,
) -> Wanted:
    """A channel of the PUT checked against this configuration (a 422 naming its field otherwise)."""
    if isinstance(given, EmailChannel):
        if settings.smtp is None:
            raise invalid_field(
                ("channels", position, "kind"),
                "e-mail alerts are not set up on this service (SMTP_URL): choose webhook, slack or teams",
            )
        return Wanted(given.kind, list(dict.fromkeys(given.to)), None)
    loc = ("channels", position, "url")
    if given.kind in SECRET_URL_KINDS and given.url.endswith(f"/{MASK}"):
        # The masked form GET shows keeps the stored URL it stands for.
        found = next((urls[c.id] for c in stored if c.kind == given.kind and c.url_shown == given.url), None)
        if found is None:
            raise invalid_field(loc, f"give the whole URL: a masked one keeps only a stored {given.kind} URL")
        return Wanted(given.kind, [], found)
    problem = partner_url_problem(given.url, settings.allow_http_upstreams, query=True)
    if problem is not None:
        raise invalid_field(loc, problem)
    return Wanted(given.kind, [], given.url)


def is_same(channel: AlertChannel, url: str | None, want: Wanted) -> bool:
    return channel.kind == want.kind and channel.recipients == want.recipients and url == want.url


def test_message(tenant: Tenant, settings: Settings) -> AlertMessage:
    """A test alert: it says so, and that nothing is wrong."""
    base = settings.public_base_url
    return AlertMessage(
        id=uuid.uuid4(),
        event="test",
        tenant_slug=tenant.slug,
        tenant_name=tenant.name,
        problem_id=None,
        kind="test",
        source="lucca-connectors",
        title="Test alert: this channel receives the connectors' alerts",
        message=f"This is a test sent from the alert settings of {tenant.name}. Nothing is wrong.",
        count=0,
        opened_at=datetime.now(UTC),
        resolved_at=None,
        console_url=f"{base}/console#/tenants/{tenant.slug}" if base else None,
    )


async def test_alerts(services: Services, tenant: Tenant, channels: list[AlertChannel]) -> AlertsTested:
    """Send a test alert to each channel at once, and say how each went."""

    async def test_one(channel: AlertChannel) -> ChannelTested:
        # Each its own id: a receiver deduplicates on it.
        message = test_message(tenant, services.settings)
        try:
            await send(services, channel, message)
        except AlertNotSent as refused:
            return ChannelTested(id=channel.id, kind=channel.kind, ok=False, message=refused.message)
        where = ", ".join(channel.recipients) if channel.kind == "email" else urlsplit(channel.url_shown or "").netloc
        return ChannelTested(id=channel.id, kind=channel.kind, ok=True, message=f"Sent to {where}.")

    return AlertsTested(channels=list(await asyncio.gather(*(test_one(channel) for channel in channels))))
