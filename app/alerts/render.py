"""An alert's words, written once: the subject line, the reason, a few facts and the console link, which each
channel lays out in its own format (plain text and HTML here; Slack's and Teams' in their senders)."""

import html
from dataclasses import dataclass
from datetime import datetime

from app.alerts.message import AlertMessage

# The reason is a run's error or a partner's words: enough to act on, short enough for every channel's limits.
MAX_REASON_CHARS = 1000
MAX_SUBJECT_CHARS = 200
EVENT_WORDS = {"opened": "", "reminder": "Still open: ", "resolved": "Resolved: ", "test": ""}


@dataclass(frozen=True)
class AlertWords:
    subject: str  # one line: the e-mail's subject, the chat message's heading and notification text
    reason: str
    facts: tuple[tuple[str, str], ...]  # (label, value), in order
    link: str | None  # the console's page, without any token


def one_line(text: str, limit: int) -> str:
    """Whitespace (line breaks too: a subject is one header line) folded, cut at `limit` characters."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def moment(when: datetime) -> str:
    return when.strftime("%Y-%m-%d %H:%M %Z").strip()


def alert_words(message: AlertMessage) -> AlertWords:
    """What every channel says about `message`."""
    subject = f"[{message.tenant_name}] {EVENT_WORDS[message.event]}{message.title}"
    facts = [("Tenant", f"{message.tenant_name} ({message.tenant_slug})"), ("Concerns", message.source)]
    if message.event != "test":
        facts += [("Times seen", str(message.count)), ("Open since", moment(message.opened_at))]
    if message.resolved_at is not None:
        facts.append(("Resolved at", moment(message.resolved_at)))
    reason = message.message.strip()
    if len(reason) > MAX_REASON_CHARS:
        reason = reason[: MAX_REASON_CHARS - 1].rstrip() + "…"
    return AlertWords(one_line(subject, MAX_SUBJECT_CHARS), reason, tuple(facts), message.console_url)


def as_text(words: AlertWords) -> str:
    lines = [words.subject, "", words.reason, "", *(f"{label}: {value}" for label, value in words.facts)]
    if words.link:
        lines += ["", f"Details: {words.link}"]
    return "\n".join(lines) + "\n"


def as_html(words: AlertWords) -> str:
    """The same words as an HTML e-mail body; every value escaped, so a partner's words are never markup."""
    escape = html.escape
    rows = "".join(
        f'<tr><th align="left">{escape(label)}</th><td>{escape(value)}</td></tr>' for label, value in words.facts
    )
    reason = escape(words.reason).replace("\n", "<br>")
    link = f'<p><a href="{escape(words.link)}">Open in the console</a></p>' if words.link else ""
    return (
        f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>{escape(words.subject)}</title></head><body>'
        f"<h2>{escape(words.subject)}</h2><p>{reason}</p><table>{rows}</table>{link}</body></html>"
    )
