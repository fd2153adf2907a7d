"""Sending one alert to one channel, in the channel's own format: `send` is what delivery and the test call use."""

from collections.abc import Awaitable, Callable

from cryptography.fernet import InvalidToken

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
    try:
        await SENDERS[channel.kind](services, channel, message)
    except InvalidToken:
        # Stored under another SECRET_KEY: no retry will read it.
        message_words = (
            "The channel's stored URL or secret cannot be read (SECRET_KEY changed?): set the channel again."
        )
        raise AlertNotSent(message_words, retryable=False) from None
