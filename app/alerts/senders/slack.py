"""Slack alerts, to an incoming webhook: `text` (the notification) and Block Kit `blocks` (the message)."""

import json
from typing import Any

from app.alerts.message import AlertMessage
from app.alerts.render import AlertWords, alert_words
from app.alerts.senders.posting import post_alert
from app.models.alert import AlertChannel
from app.services.context import Services

# Slack's limit on a section's text; an escaped character takes up to 5 ("&amp;").
MAX_SECTION_CHARS = 3000


def slack_escape(text: str) -> str:
    """Slack reads `<…>` as links and mentions: a partner's words must stay words (api.slack.com, formatting)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def slack_body(words: AlertWords) -> dict[str, Any]:
    reason = slack_escape(words.reason)
    if len(reason) > MAX_SECTION_CHARS:
        reason = slack_escape(words.reason[: MAX_SECTION_CHARS // 5 - 1]) + "…"
    fields = [{"type": "mrkdwn", "text": f"*{label}*\n{slack_escape(value)}"} for label, value in words.facts]
    blocks: list[dict[str, Any]] = [section(f"*{slack_escape(words.subject)}*")]
    if reason:
        blocks.append(section(reason))
    blocks.append({"type": "section", "fields": fields})
    if words.link:
        button = {"type": "button", "text": {"type": "plain_text", "text": "Open in the console"}, "url": words.link}
        blocks.append({"type": "actions", "elements": [button]})
    return {"text": slack_escape(words.subject), "blocks": blocks}


async def send_slack(services: Services, channel: AlertChannel, message: AlertMessage) -> None:
    body = json.dumps(slack_body(alert_words(message)), ensure_ascii=False).encode()
    await post_alert(services, channel, "slack", body)
