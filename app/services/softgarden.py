"""Softgarden → Lucca: a candidate marked hired becomes an employee (contract section 7)."""

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from app.auth import WebhookTarget
from app.metrics import metrics
from app.models import Connector, Delivery, Run, RunEvent, Tenant
from app.models.base import utcnow
from app.schemas.run import RunCounts
from app.schemas.softgarden import SoftgardenHire, SoftgardenSettings
from app.services.context import Services
from app.services.hire import EstablishmentRules, HireRequest
from app.services.hiring import hire_and_link
from app.services.run_log import RunLog

SOURCE = "softgarden"
OPERATION = "candidate_hired"

# Built once: SQLAlchemy then reuses their compiled form, which matters on the webhook's hot path.
CLAIM_DELIVERY = insert(Delivery).on_conflict_do_nothing().returning(Delivery.run_id)
FIRST_RUN = select(Delivery.run_id).where(
    Delivery.tenant_id == bindparam("tenant_id"),
    Delivery.source == bindparam("source"),
    Delivery.external_id == bindparam("external_id"),
)
INSERT_RUN = insert(Run)


def is_hire(candidate: SoftgardenHire, settings: SoftgardenSettings) -> bool:
    """A missing status means hired; statuses compare ignoring case."""
    hired = {status.casefold() for status in settings.hire_statuses}
    return candidate.status is None or candidate.status.casefold() in hired


@dataclass(frozen=True)
class Receipt:
    run_id: uuid.UUID
    duplicate: bool
    queued: bool


async def receive_hire(connection: AsyncConnection, target: WebhookTarget, candidate: SoftgardenHire) -> Receipt:
    """Store a delivery and its run durably, in the caller's transaction; a known hire returns its first run.

    Written with Core statements: this is the hottest path of the service, and the ORM's unit of work costs
    more CPU than the two inserts themselves.
    """
    settings = SoftgardenSettings.model_validate(target.settings)
    hire = is_hire(candidate, settings)
    received_at = utcnow()
    run_id = uuid.uuid4()
    payload = candidate.model_dump(mode="json")
    claimed = await connection.scalar(
        CLAIM_DELIVERY,
        {
            "id": uuid.uuid4(),
            "tenant_id": target.tenant_id,
            "source": SOURCE,
            # Only a hire uses up its applicationId; other statuses never block a later hire.
            "external_id": candidate.applicationid if hire else None,
            "run_id": run_id,
            "payload": payload,
            "received_at": received_at,
        },
    )
    if claimed is None:
        metrics.inc("webhook_deliveries_total", source=SOURCE, outcome="duplicate")
        first = await connection.scalar(
            FIRST_RUN, {"tenant_id": target.tenant_id, "source": SOURCE, "external_id": candidate.applicationid}
        )
        assert first is not None
        return Receipt(first, duplicate=True, queued=False)
    arrival_day = received_at.astimezone(ZoneInfo(target.timezone)).date()
    run = new_run_values(
        run_id,
        target.tenant_id,
        {"candidate": payload, "arrival_date": arrival_day.isoformat()},
    )
    if hire:
        await connection.execute(INSERT_RUN, run)
    else:
        await record_skipped_status(connection, run, candidate, settings, received_at)
    metrics.inc("webhook_deliveries_total", source=SOURCE, outcome="hire" if hire else "other_status")
    return Receipt(run_id, duplicate=False, queued=hire)


def new_run_values(run_id: uuid.UUID, tenant_id: uuid.UUID, input: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": run_id,
        "tenant_id": tenant_id,
        "connector": SOURCE,
        "operation": OPERATION,
        "trigger": "webhook",
        "status": "queued",
        "counts": {**RunCounts().model_dump(), "total": 1},
        "input": input,
        "state": {},
    }


async def record_skipped_status(
    connection: AsyncConnection,
    run: dict[str, Any],
    candidate: SoftgardenHire,
    settings: SoftgardenSettings,
    at: datetime,
) -> None:
    """A status other than hired: a run that is already over, with one skipped item and the reason."""
    counts = {**run["counts"], "skipped": 1}
    values = {**run, "status": "succeeded", "counts": counts, "started_at": at, "finished_at": at}
    await connection.execute(INSERT_RUN, values)
    message = f"Status {candidate.status!r} is not a hire status ({', '.join(settings.hire_statuses)}): nothing to do."
    subject = candidate.email or f"{candidate.firstname} {candidate.lastname}"
    await connection.execute(
        insert(RunEvent).values(run_id=run["id"], at=at, level="info", action="skip", subject=subject, message=message)
    )


def hire_request(candidate: SoftgardenHire, settings: SoftgardenSettings, arrival_date: str) -> HireRequest:
    return HireRequest(
        first_name=candidate.firstname,
        last_name=candidate.lastname,
        personal_email=candidate.email,
        phone=candidate.phone,
        address=candidate.address_line(),
        job_title=candidate.jobtitle,
        start_date=candidate.startdate or arrival_date,
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
        external_id=candidate.applicationid,
    )


async def process_hire(services: Services, run: Run, tenant: Tenant, connector: Connector, log: RunLog) -> None:
    """The queued job's work: build the hire from the stored delivery and today's settings, then hire."""
    settings = SoftgardenSettings.model_validate(connector.settings)
    candidate = SoftgardenHire.model_validate(run.input["candidate"])
    await hire_and_link(services, tenant, log, hire_request(candidate, settings, run.input["arrival_date"]))
