"""Sending one alert to one channel, in the channel's own format: `send` is what delivery and the test call use."""

from collections.abc import Awaitable, Callable

from app.alerts.message import AlertMessage
from app.alerts.senders import email, slack, teams, webhook
from app.alerts.senders.errors import AlertNotSent
from app.models.alert import AlertChannel
from app.services.context import Services

__all__ = ["AlertNotSent", "send"]

Sender = Callable[[Services, AlertChannel, AlertMessage], Awaitable[None]]
SENDERS: dict[str, Sender] = {
    "email": email.send_email,
    "webhook": webhook.send_webhook,
    "slack": slack.send_slack,
    "teams": teams.send_teams,
}


async def send(services: Services, channel: AlertChannel, message: AlertMessage) -> None:
    """Send `message` to `channel` once (no retry here: delivery retries); AlertNotSent says why it was not."""
    await SENDERS[channel.kind](services, channel, message)
