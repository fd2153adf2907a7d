"""Taleez → Lucca: a recruiter's tool imports a candidate, with the company's defaults (contract section 8)."""

from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from app.clients.taleez import TaleezCandidate, TaleezClient
from app.crypto import SecretBox
from app.errors import invalid_field
from app.models import Connector, Run, Tenant
from app.schemas.taleez import TaleezCandidateIn, TaleezImport, TaleezSettings
from app.services.connectors import connector_settings, enabled_connector
from app.services.context import Services
from app.services.hire import ITEM, HireRequest
from app.services.hiring import hire_and_link
from app.services.lucca_key import require_key
from app.services.run_log import RunLog
from app.services.runs import new_run
from app.services.work_email import is_address

SOURCE = "taleez"
OPERATION = "candidate_import"
CANDIDATE = "candidate"  # the run's state key of the candidate read from Taleez


def taleez_settings(box: SecretBox, connector: Connector) -> TaleezSettings:
    settings: TaleezSettings = connector_settings(box, connector)
    return settings


def check_complete(body: TaleezImport, settings: TaleezSettings) -> None:
    """Refuse, before queuing anything, an import that Lucca could not take: name everything missing."""
    missing = [
        f"{field} (no {field} in the request and no default_{field} in the settings)"
        for field, given, default in (
            ("establishment_id", body.establishment_id, settings.default_establishment_id),
            ("department_id", body.department_id, settings.default_department_id),
            ("role_principal_id", body.role_principal_id, settings.default_role_principal_id),
        )
        if given is None and default is None
    ]
    if body.candidate is not None and not has_login(body.candidate.mail, settings):
        missing.append("candidate.mail (an address, needed as the login: no professional_email_template is set)")
    if missing:
        raise invalid_field((), "Missing: " + "; ".join(missing) + ".", kind="missing")


async def queue_import(session: AsyncSession, box: SecretBox, tenant: Tenant, body: TaleezImport) -> Run:
    """Check the import and store its run (the caller commits, then queues it)."""
    require_key(tenant, "a Taleez import creates an employee in Lucca")
    settings = taleez_settings(box, await enabled_connector(session, tenant, SOURCE))
    check_complete(body, settings)
    today = datetime.now(ZoneInfo(tenant.timezone)).date()
    run = new_run(
        tenant, SOURCE, OPERATION, "api", {"request": body.model_dump(mode="json"), "today": today.isoformat()}
    )
    run.counts = {**run.counts, "total": 1}
    session.add(run)
    await session.flush()
    return run


def has_login(mail: str | None, settings: TaleezSettings) -> bool:
    """A login comes from the template, else from the candidate's e-mail when it is an address."""
    return settings.professional_email_template is not None or (mail is not None and is_address(mail))


def hire_request(candidate: TaleezCandidate, body: TaleezImport, settings: TaleezSettings, today: str) -> HireRequest:
    return HireRequest(
        first_name=candidate.first_name,
        last_name=candidate.last_name,
        personal_email=candidate.mail or None,
        phone=candidate.phone or None,
        start_date=body.start_date or today,
        establishment_id=body.establishment_id or settings.default_establishment_id,
        department_id=body.department_id or settings.default_department_id,
        role_principal_id=body.role_principal_id or settings.default_role_principal_id,
        manager_id=body.manager_id,
        email_template=settings.professional_email_template,
        partner=SOURCE,
        external_id=str(candidate.id),
    )


async def read_candidate(
    services: Services, settings: TaleezSettings, body: TaleezImport, log: RunLog
) -> TaleezCandidate:
    """The candidate as this run first read them, whatever Taleez says at a later attempt."""
    if body.candidate is not None:
        return inline_candidate(body.candidate)
    if CANDIDATE in log.state:
        return TaleezCandidate.model_validate(log.state[CANDIDATE])
    assert body.candidate_id is not None
    client = TaleezClient(services.http, settings.api_base_url, settings.api_secret, retry=services.retry)
    candidate = await client.get_candidate(body.candidate_id)
    # Kept before acting on it: an attempt after a create whose answer was lost must look for the same person.
    await log.remember(CANDIDATE, candidate.model_dump(mode="json", by_alias=True))
    return candidate


def inline_candidate(candidate: TaleezCandidateIn) -> TaleezCandidate:
    return TaleezCandidate.model_validate(candidate.model_dump())


async def process_import(services: Services, run: Run, tenant: Tenant, connector: Connector, log: RunLog) -> None:
    """The queued job's work: read the candidate (from Taleez when only its id was given), then hire."""
    settings = taleez_settings(services.box, connector)
    body = TaleezImport.model_validate(run.input["request"])
    candidate = await read_candidate(services, settings, body, log)
    subject = candidate.mail or f"{candidate.first_name} {candidate.last_name}"
    if not has_login(candidate.mail, settings):
        message = (
            "The candidate has no e-mail address in Taleez and no professional_email_template is set: no login to give."
        )
        await log.item(ITEM, "failed", "fail", subject, message)
        return
    await hire_and_link(services, tenant, log, hire_request(candidate, body, settings, run.input["today"]))
