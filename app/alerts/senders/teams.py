"""Microsoft Teams alerts, to a Workflows webhook: a message carrying one Adaptive Card."""

import json
from typing import Any

from app.alerts.message import AlertMessage
from app.alerts.render import AlertWords, alert_words
from app.alerts.senders.posting import post_alert
from app.models.alert import AlertChannel
from app.services.context import Services

CARD = "application/vnd.microsoft.card.adaptive"


def text_block(text: str, **style: Any) -> dict[str, Any]:
    return {"type": "TextBlock", "text": text, "wrap": True, **style}


def adaptive_card(words: AlertWords) -> dict[str, Any]:
    body = [text_block(words.subject, weight="Bolder", size="Medium")]
    if words.reason:
        body.append(text_block(words.reason))
    body.append({"type": "FactSet", "facts": [{"title": label, "value": value} for label, value in words.facts]})
    card: dict[str, Any] = {
        "type": "AdaptiveCard",
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "version": "1.4",
        "body": body,
    }
    if words.link:
        card["actions"] = [{"type": "Action.OpenUrl", "title": "Open in the console", "url": words.link}]
    return card


def teams_body(words: AlertWords) -> dict[str, Any]:
    return {"type": "message", "attachments": [{"contentType": CARD, "content": adaptive_card(words)}]}


async def send_teams(services: Services, channel: AlertChannel, message: AlertMessage) -> None:
    body = json.dumps(teams_body(alert_words(message)), ensure_ascii=False).encode()
    await post_alert(services, channel, "teams", body)
