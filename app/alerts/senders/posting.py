"""Posting an alert to a URL a tenant gave, through the partner calls' machinery: the address is checked again
when connecting (app.clients.addresses), one attempt with a short timeout, errors in plain words."""

import re
from collections.abc import Mapping
from urllib.parse import urlsplit

from app.alerts.senders.errors import AlertNotSent
from app.clients.http import PartnerHTTP, PartnerRejected, PartnerUnavailable, RetryPolicy
from app.models.alert import AlertChannel
from app.services.context import Services

TIMEOUT_SECONDS = 10.0
# One attempt per call: the delivery retries on its own schedule, and the test call answers at once.
ONE_ATTEMPT = RetryPolicy(in_call_seconds=0)
# What a receiver's error might echo of its URL is masked: the whole path and query, and every piece of them long
# enough to be a token (a Slack or Teams URL's secret is 24 characters or more; words of an error are shorter).
MIN_TOKEN_CHARS = 16


async def post_alert(
    services: Services, channel: AlertChannel, receiver: str, body: bytes, headers: Mapping[str, str] | None = None
) -> None:
    """POST the JSON `body` to the channel's URL; `receiver` names it in errors ("Slack at hooks.slack.com")."""
    assert channel.url_encrypted is not None
    url = services.box.decrypt(channel.url_encrypted)
    call = PartnerHTTP(
        services.http,
        partner=receiver,
        base_url=url,
        headers={"Content-Type": "application/json", **(headers or {})},
        retry=ONE_ATTEMPT,
        timeout=TIMEOUT_SECONDS,
    )
    try:
        await call.request("POST", "", content=body, replay_safe=False)
    except PartnerUnavailable as exc:
        raise AlertNotSent(without_url(exc.message, url), retryable=True, retry_after=exc.retry_after) from None
    except PartnerRejected as exc:
        raise AlertNotSent(without_url(exc.message, url), retryable=False) from None


def without_url(text: str, url: str) -> str:
    """`text` with what it holds of `url`'s path and query masked."""
    parts = urlsplit(url)
    whole = {piece for piece in (parts.path, parts.query) if len(piece) > 1}
    tokens = {piece for piece in re.split(r"[/?&=]", f"{parts.path}?{parts.query}") if len(piece) >= MIN_TOKEN_CHARS}
    for secret in sorted(whole | tokens, key=len, reverse=True):
        text = text.replace(secret, "…")
    return text
