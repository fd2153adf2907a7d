"""Softgarden → Lucca: a candidate marked hired becomes an employee (contract section 7)."""

import functools
import json
import uuid
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import asyncpg
from pydantic import StrictStr, TypeAdapter, ValidationError

from app.auth import WebhookTarget
from app.metrics import metrics
from app.models import Connector, Run, Tenant
from app.models.base import utcnow
from app.schemas.run import RunCounts
from app.schemas.softgarden import SoftgardenHire, SoftgardenSettings
from app.services.connectors import connector_settings
from app.services.context import Services
from app.services.hire import EstablishmentRules, HireRequest
from app.services.hiring import hire_and_link
from app.services.run_log import RunLog

SOURCE = "softgarden"
OPERATION = "candidate_hired"

# The webhook's hot path speaks SQL to the driver: one statement claims the applicationId and writes the run, so
# it is atomic on its own.
CLAIM_AND_QUEUE = """
    WITH claimed AS (
        INSERT INTO deliveries (id, tenant_id, source, external_id, run_id, payload, received_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7)
        ON CONFLICT (tenant_id, source, external_id) DO NOTHING
        RETURNING run_id
    )
    INSERT INTO runs (id, tenant_id, connector, operation, trigger, status, counts, input, state,
                      created_at, started_at, finished_at, retry_at)
    SELECT run_id, $2, $3, $8, 'webhook', $9, $10, $11, '{}', $7, $12, $12, $7 FROM claimed
    RETURNING id
"""
FIRST_RUN = "SELECT run_id FROM deliveries WHERE tenant_id = $1 AND source = $2 AND external_id = $3"
SKIP_EVENT = """
    INSERT INTO run_events (run_id, tenant_id, at, level, subject, action, message)
    VALUES ($1, $2, $3, 'info', $4, 'skip', $5)
"""

# Any list of texts will do to tell a hire: the settings' own rules are the run's to apply.
HIRE_STATUSES = TypeAdapter(list[StrictStr])
DEFAULT_HIRE_STATUSES: tuple[str, ...] = tuple(SoftgardenSettings.model_fields["hire_statuses"].default)


def is_hire(candidate: SoftgardenHire, hire_statuses: frozenset[str]) -> bool:
    """A missing status means hired; statuses compare ignoring case."""
    return candidate.status is None or candidate.status.casefold() in hire_statuses


@functools.lru_cache(maxsize=1024)
def stored_hire_statuses(text: str | None) -> tuple[str, ...]:
    """The statuses that mean hired, from the connector's stored setting (JSON, None when absent), parsed once per
    distinct value. Only this setting is read here: stored settings that a stricter rule now refuses still take
    their hires in, and the run says in plain words what to fix (connector_settings)."""
    try:
        return tuple(HIRE_STATUSES.validate_json(text)) if text is not None else DEFAULT_HIRE_STATUSES
    except ValidationError:
        return DEFAULT_HIRE_STATUSES


NO_COUNTS = RunCounts().model_dump()


@dataclass(frozen=True)
class Receipt:
    run_id: uuid.UUID
    duplicate: bool
    queued: bool


async def receive_hire(connection: asyncpg.Connection, target: WebhookTarget, candidate: SoftgardenHire) -> Receipt:
    """Store a delivery and its run durably; a hire already received returns its first run."""
    statuses = stored_hire_statuses(target.hire_statuses)
    hire = is_hire(candidate, frozenset(status.casefold() for status in statuses))
    received_at = utcnow()
    arrival_day = received_at.astimezone(ZoneInfo(target.timezone)).date()
    payload = candidate.model_dump(mode="json", by_alias=True)
    counts = {**NO_COUNTS, "total": 1, "skipped": 0 if hire else 1}
    values = (
        uuid.uuid4(),
        target.tenant_id,
        SOURCE,
        # Only a hire uses up its applicationId; other statuses never block a later hire.
        candidate.application_id if hire else None,
        uuid.uuid4(),
        json.dumps(payload),
        received_at,
        OPERATION,
        "queued" if hire else "succeeded",
        json.dumps(counts),
        json.dumps({"candidate": payload, "arrival_date": arrival_day.isoformat()}),
        None if hire else received_at,
    )
    if not hire:
        async with connection.transaction():
            run_id = await connection.fetchval(CLAIM_AND_QUEUE, *values)
            await connection.execute(
                SKIP_EVENT,
                run_id,
                target.tenant_id,
                received_at,
                subject_of(candidate),
                skip_reason(candidate, statuses),
            )
        metrics.inc("webhook_deliveries_total", source=SOURCE, outcome="other_status")
        return Receipt(run_id, duplicate=False, queued=False)
    run_id = await connection.fetchval(CLAIM_AND_QUEUE, *values)
    if run_id is None:
        metrics.inc("webhook_deliveries_total", source=SOURCE, outcome="duplicate")
        first = await connection.fetchval(FIRST_RUN, target.tenant_id, SOURCE, candidate.application_id)
        return Receipt(first, duplicate=True, queued=False)
    metrics.inc("webhook_deliveries_total", source=SOURCE, outcome="hire")
    return Receipt(run_id, duplicate=False, queued=True)


# run_events.subject is varchar(300); an e-mail (500) or two names (200 each) may be longer: cut on purpose.
SUBJECT_MAX = 300


def subject_of(candidate: SoftgardenHire) -> str:
    subject = candidate.email or f"{candidate.first_name} {candidate.last_name}"
    return subject if len(subject) <= SUBJECT_MAX else subject[: SUBJECT_MAX - 1] + "…"


def skip_reason(candidate: SoftgardenHire, hire_statuses: tuple[str, ...]) -> str:
    return f"Status {candidate.status!r} is not a hire status ({', '.join(hire_statuses)}): nothing to do."


def hire_request(candidate: SoftgardenHire, settings: SoftgardenSettings, arrival_date: str) -> HireRequest:
    return HireRequest(
        first_name=candidate.first_name,
        last_name=candidate.last_name,
        personal_email=candidate.email,
        phone=candidate.phone,
        address=candidate.address_line(),
        job_title=candidate.job_title,
        start_date=candidate.start_date or arrival_date,
        company=candidate.company,
        establishment_rules=EstablishmentRules(
            aliases=settings.establishment_aliases,
            allowed_ids=settings.establishment_ids,
            default_id=settings.default_establishment_id,
        ),
        department_id=settings.default_department_id,
        role_principal_id=settings.default_role_principal_id,
        email_template=settings.professional_email_template,
        partner=SOURCE,
        external_id=candidate.application_id,
    )


async def process_hire(services: Services, run: Run, tenant: Tenant, connector: Connector, log: RunLog) -> None:
    """The queued job's work: build the hire from the stored delivery and today's settings, then hire."""
    settings: SoftgardenSettings = connector_settings(services.box, connector)
    candidate = SoftgardenHire.model_validate(run.input["candidate"])
    await hire_and_link(services, tenant, log, hire_request(candidate, settings, run.input["arrival_date"]))
