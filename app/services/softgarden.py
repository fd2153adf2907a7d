"""Softgarden → Lucca: a candidate marked hired becomes an employee (contract section 7)."""

from datetime import datetime
from functools import partial
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.metrics import metrics
from app.models import Connector, Delivery, Run, RunEvent, Tenant
from app.models.base import utcnow
from app.schemas.softgarden import SoftgardenHire, SoftgardenSettings
from app.services.context import Services
from app.services.hire import EstablishmentRules, HireRequest, hire_candidate
from app.services.links import find_linked_user, save_link
from app.services.locks import tenant_lock
from app.services.run_log import RunLog
from app.services.runs import new_run

SOURCE = "softgarden"
OPERATION = "candidate_hired"


def is_hire(candidate: SoftgardenHire, settings: SoftgardenSettings) -> bool:
    """A missing status means hired; statuses compare ignoring case."""
    hired = {status.casefold() for status in settings.hire_statuses}
    return candidate.status is None or candidate.status.casefold() in hired


async def receive_hire(
    session: AsyncSession, tenant: Tenant, connector: Connector, candidate: SoftgardenHire
) -> tuple[Run, bool]:
    """Store a delivery durably (before it is answered); returns its run and whether it is a duplicate."""
    settings = SoftgardenSettings.model_validate(connector.settings)
    received_at = utcnow()
    arrival_day = received_at.astimezone(ZoneInfo(tenant.timezone)).date()
    run = new_run(
        tenant,
        SOURCE,
        OPERATION,
        "webhook",
        {"candidate": candidate.model_dump(mode="json"), "arrival_date": arrival_day.isoformat()},
    )
    run.counts = {**run.counts, "total": 1}
    hire = is_hire(candidate, settings)
    claimed = await session.scalar(
        insert(Delivery)
        .values(
            tenant_id=tenant.id,
            source=SOURCE,
            # Only a hire uses up its applicationId; other statuses never block a later hire.
            external_id=candidate.applicationid if hire else None,
            run_id=run.id,
            payload=candidate.model_dump(mode="json"),
            received_at=received_at,
        )
        .on_conflict_do_nothing()
        .returning(Delivery.id)
    )
    if claimed is None:
        metrics.inc("webhook_deliveries_total", source=SOURCE, outcome="duplicate")
        first = await session.scalar(
            select(Run)
            .join(Delivery, Delivery.run_id == Run.id)
            .where(
                Delivery.tenant_id == tenant.id,
                Delivery.source == SOURCE,
                Delivery.external_id == candidate.applicationid,
            )
        )
        assert first is not None
        return first, True
    if not hire:
        skip_status(session, run, candidate, settings, received_at)
    session.add(run)
    metrics.inc("webhook_deliveries_total", source=SOURCE, outcome="hire" if hire else "other_status")
    return run, False


def skip_status(
    session: AsyncSession, run: Run, candidate: SoftgardenHire, settings: SoftgardenSettings, at: datetime
) -> None:
    run.status, run.started_at, run.finished_at = "succeeded", at, at
    run.counts = {**run.counts, "skipped": 1}
    message = f"Status {candidate.status!r} is not a hire status ({', '.join(settings.hire_statuses)}): nothing to do."
    subject = candidate.email or f"{candidate.firstname} {candidate.lastname}"
    session.add(RunEvent(run_id=run.id, at=at, level="info", action="skip", subject=subject, message=message))


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
    request = hire_request(candidate, settings, run.input["arrival_date"])
    linked = await find_linked_user(services.sessionmaker, tenant.id, SOURCE, request.external_id)
    user = await hire_candidate(
        services.lucca(tenant),
        log,
        request,
        today=datetime.now(ZoneInfo(tenant.timezone)).date(),
        tenant_lock=partial(tenant_lock, services.engine, "hire", tenant.id),
        linked_user_id=linked,
    )
    if user is not None:
        await save_link(services.sessionmaker, tenant.id, SOURCE, request.external_id, user.id)
