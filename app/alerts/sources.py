"""What each source of problems reports (contract 14), in plain words: runs ending failed or partial, a partner
refusing the stored credentials, the Lucca webhook subscription failing, Lucca retiring a path the service reads
(contract 13); the directory's lag and schedules that
missed their day are found by the periodic check (app.alerts.checks)."""

import re
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.alerts import problems
from app.alerts.problems import Problem
from app.models import Run
from app.queue import enqueue_alerts
from app.services.context import Services

# What a connector's runs of an operation are, as the alert's title names them.
RUN_WORDS = {
    ("softgarden", "candidate_hired"): "Softgarden hires are",
    ("taleez", "candidate_import"): "Taleez candidate imports are",
    ("cards", "users_import"): "Cards user imports are",
    ("cards", "departments_import"): "Cards department imports are",
    ("cards", "changes"): "Cards' automatic sync is",
    ("cards", "stats_sync"): "The Cards statistics push is",
    ("elevo", "people_sync"): "The nightly Elevo sync is",
    ("lucca", "directory_sync"): "The Lucca directory's full sync is",
}
# The partners whose credentials an operation's success shows to be good again.
PARTNERS_USED = {
    ("softgarden", "candidate_hired"): ("lucca",),
    ("taleez", "candidate_import"): ("taleez", "lucca"),
    ("cards", "users_import"): ("cards",),
    ("cards", "departments_import"): ("cards",),
    ("cards", "changes"): ("cards",),
    ("cards", "stats_sync"): ("cards", "lucca"),
    ("elevo", "people_sync"): ("elevo",),
    ("lucca", "directory_sync"): ("lucca",),
}
PARTNER_NAMES = {"lucca": "Lucca", "cards": "Cards", "taleez": "Taleez", "elevo": "Elevo", "softgarden": "Softgarden"}
# Alerts name the person a failure concerns, nothing more: an address in a partner's words is left out.
# It starts only where a word starts (the same matches), so a long word without "@" is read once, not once per
# character.
EMAIL = re.compile(r"(?<![^\s@<>()\"',;:])[^\s@<>()\"',;:]+@[^\s@<>()\"',;:]+\.[^\s@<>()\"',;:]+")
MAX_MESSAGE_CHARS = 600


def partner_name(partner: str) -> str:
    return PARTNER_NAMES.get(partner, partner.capitalize())


def runs_key(connector: str, operation: str) -> str:
    return f"runs:{connector}:{operation}"


def credentials_key(partner: str) -> str:
    return f"credentials:{partner}"


LUCCA_WEBHOOK_KEY = "lucca_webhook"
LUCCA_NOTICE_KEY = "lucca_notice"


async def after_run(session: AsyncSession, run: Run, refused_by: str | None) -> list[uuid.UUID]:
    """A finished run's part in its problems, in its closing transaction: a success clears its kind's problem and
    the credentials problems of the partners it used; a failure reports one (the refusing partner's credentials
    instead when a partner refused them). Returns the deliveries made."""
    operation = (run.connector, run.operation)
    if run.status == "succeeded":
        keys = [runs_key(*operation), *(credentials_key(partner) for partner in PARTNERS_USED.get(operation, ()))]
        return await problems.clear(session, run.tenant_id, keys, run.id)
    if refused_by is not None:
        return await problems.report(session, run.tenant_id, credentials_problem(refused_by, run.error or ""), run.id)
    return await problems.report(session, run.tenant_id, run_problem(run), run.id)


def run_problem(run: Run) -> Problem:
    words = RUN_WORDS.get((run.connector, run.operation), f"{partner_name(run.connector)} {run.operation} runs are")
    counts = run.counts
    reason = run.error or f"{counts.get('failed', 0)} of {counts.get('total', 0)} items failed."
    person = person_of(run.input)
    return Problem(
        key=runs_key(run.connector, run.operation),
        kind="runs",
        source=run.connector,
        operation=run.operation,
        title=f"{words} {'partly failing' if run.status == 'partial' else 'failing'}",
        message=plain(f"{person}: {reason}" if person else reason),
    )


def credentials_problem(partner: str, said: str) -> Problem:
    """A partner refused the stored credentials: named, never shown (the refusal's words hold no secret)."""
    name = partner_name(partner)
    advice = f"Give the {name} credentials again in the settings; failed runs can be retried then."
    return Problem(
        key=credentials_key(partner),
        kind="credentials",
        source=partner,
        title=f"{name} refused the stored credentials (connection broken)",
        message=plain(f"{said.rstrip('. ')}. {advice}" if said else advice),
    )


def lucca_webhook_problem(message: str) -> Problem:
    return Problem(
        key=LUCCA_WEBHOOK_KEY,
        kind="lucca_webhook",
        source="lucca",
        title="The Lucca webhook subscription is failing",
        message=plain(message),
    )


def lucca_notice_problem(notices: Sequence[str]) -> Problem:
    return Problem(
        key=LUCCA_NOTICE_KEY,
        kind="lucca_notice",
        source="lucca",
        title="Lucca is retiring a path this service reads",
        message=plain(" ".join(notices)),
    )


def person_of(run_input: dict[str, Any]) -> str | None:
    """The name of the candidate a hire run concerns, when its input holds one."""
    candidate = run_input.get("candidate")
    if not isinstance(candidate, dict):
        return None
    names = [candidate.get(key) for key in ("firstName", "lastName", "first_name", "last_name")]
    name = " ".join(str(part).strip() for part in names if isinstance(part, str) and part.strip())
    return name or None


def plain(message: str) -> str:
    """One short paragraph, without e-mail addresses."""
    message = EMAIL.sub("(an e-mail address)", " ".join(message.split()))
    return message if len(message) <= MAX_MESSAGE_CHARS else message[: MAX_MESSAGE_CHARS - 1] + "…"


async def credentials_seen(services: Services, tenant_id: uuid.UUID, partner: str, refusal: str | None) -> None:
    """A call with the partner's stored credentials was refused (`refusal`: its words) or went through (None),
    outside any run (a connection check): its problem reported or cleared, the alerts queued once committed."""
    async with services.sessionmaker.begin() as session:
        deliveries = await credentials_noted(session, tenant_id, partner, refusal)
    await enqueue_alerts(services.redis, deliveries)


async def credentials_noted(
    session: AsyncSession, tenant_id: uuid.UUID, partner: str, refusal: str | None
) -> list[uuid.UUID]:
    """The same in the caller's transaction; returns the deliveries made."""
    if refusal is None:
        return await problems.clear(session, tenant_id, [credentials_key(partner)])
    return await problems.report(session, tenant_id, credentials_problem(partner, refusal))


async def lucca_webhook_noted(session: AsyncSession, tenant_id: uuid.UUID, failure: str | None) -> list[uuid.UUID]:
    """The Lucca webhook subscription failed (`failure`: why) or is active (None), in the caller's transaction."""
    if failure is None:
        return await problems.clear(session, tenant_id, [LUCCA_WEBHOOK_KEY])
    return await problems.report(session, tenant_id, lucca_webhook_problem(failure))


async def lucca_notices_noted(
    session: AsyncSession, tenant_id: uuid.UUID, new: Sequence[str], *, cleared: bool = False
) -> list[uuid.UUID]:
    """Lucca announced something new about a path the service reads (a Sunset, a 410: `new`), or a complete read
    heard nothing of the kind (`cleared`), in the caller's transaction."""
    if cleared:
        return await problems.clear(session, tenant_id, [LUCCA_NOTICE_KEY])
    return await problems.report(session, tenant_id, lucca_notice_problem(new)) if new else []
