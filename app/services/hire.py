"""The hire pipeline: a candidate becomes exactly one Lucca employee (contract section 7).

It knows nothing of any ATS payload: Softgarden and Taleez each build a `HireRequest` and call `hire_candidate`.
"""

from collections.abc import Callable, Iterator
from contextlib import AbstractAsyncContextManager
from datetime import date
from typing import Any

from pydantic import BaseModel, Field

from app.clients.http import PartnerRejected
from app.clients.lucca import Department, Establishment, LuccaClient, LuccaUser
from app.services import work_email
from app.services.names import comparable
from app.services.run_log import Action, Outcome, RunLog

ITEM = "candidate"
MAX_LOGIN_REFUSALS = 5


class EstablishmentRules(BaseModel):
    """How a company name becomes an establishment (Softgarden settings)."""

    aliases: dict[str, int] = Field(default_factory=dict)
    allowed_ids: list[int] | None = None
    default_id: int | None = None


class HireRequest(BaseModel):
    first_name: str
    last_name: str
    personal_email: str | None = None
    phone: str | None = None
    address: str | None = None
    job_title: str | None = None
    start_date: date
    company: str | None = None
    establishment_id: int | None = None  # chosen by the caller; otherwise matched from `company`
    establishment_rules: EstablishmentRules = Field(default_factory=EstablishmentRules)
    department_id: int
    role_principal_id: int
    manager_id: int | None = None  # chosen by the caller; otherwise the department's active head
    email_template: str | None = None  # None: the login is the personal email, and no `mail`
    partner: str
    external_id: str

    @property
    def subject(self) -> str:
        return self.personal_email or f"{self.first_name} {self.last_name}"


class ItemStopped(Exception):
    """The candidate cannot go further; `outcome` says whether that is a failure or a deliberate skip."""

    def __init__(self, outcome: Outcome, message: str) -> None:
        super().__init__(message)
        self.outcome = outcome
        self.message = message


async def hire_candidate(
    lucca: LuccaClient,
    log: RunLog,
    request: HireRequest,
    *,
    today: date,
    tenant_lock: Callable[[], AbstractAsyncContextManager[None]],
    linked_user_id: int | None,
) -> LuccaUser | None:
    """Create (or link) the employee and record the outcome; returns the Lucca user, None when stopped."""
    try:
        # One hire at a time per tenant: the lookup and the create must not interleave with another hire's. The
        # tenant's Lucca budget is shared anyway, and serial hires fill the structure cache once, not in a stampede.
        async with tenant_lock():
            establishment_id = request.establishment_id or await pick_establishment(lucca, log, request)
            people = await lucca.list_users()
            linked = await check_link(log, people, request, linked_user_id)
            same = linked or find_same_person(people, request)
            if same is not None:
                await record_same_person(log, request, same)
                return same
            manager_id = await pick_manager(lucca, log, people, request, today)
            user = await create_with_free_login(lucca, log, people, request, establishment_id, manager_id)
    except ItemStopped as stop:
        action: Action = "skip" if stop.outcome == "skipped" else "fail"
        await log.item(ITEM, stop.outcome, action, request.subject, stop.message)
        return None
    await log.item(ITEM, "created", "create", request.subject, describe_created(user, request))
    return user


async def pick_establishment(lucca: LuccaClient, log: RunLog, request: HireRequest) -> int:
    """Alias first, then the one active establishment with the same name, else the default when no company."""
    rules = request.establishment_rules
    company = request.company
    if not company:
        if rules.default_id is None:
            raise ItemStopped("failed", "The candidate has no company and no default establishment is configured.")
        return check_covered(rules, rules.default_id, "the default establishment")
    alias = rules.aliases.get(company) or next(
        (target for name, target in rules.aliases.items() if comparable(name) == comparable(company)), None
    )
    if alias is not None:
        await log.event("note", request.subject, f"Company {company!r} is an alias of establishment {alias}.")
        return check_covered(rules, alias, f"establishment {alias}")
    establishments = await lucca.list_establishments()
    active = [place for place in establishments if not place.is_archived]
    matches = [place for place in active if comparable(place.name) == comparable(company)]
    if not matches:
        raise ItemStopped("failed", no_match_message(company, active))
    if len(matches) > 1:
        names = " and ".join(f"{place.name} ({place.id})" for place in matches)
        raise ItemStopped("failed", f"Company {company!r} matches several establishments: {names}. Add an alias.")
    place = matches[0]
    await log.event("note", request.subject, f"Company {company!r} matches establishment {place.name} ({place.id}).")
    return check_covered(rules, place.id, f"establishment {place.name} ({place.id})")


def no_match_message(company: str, active: list[Establishment]) -> str:
    known = ", ".join(f"{place.name} ({place.id})" for place in active) or "none"
    return (
        f"No establishment matches company {company!r}. Known establishments: {known}. "
        "Add an alias in the connector settings if the names differ."
    )


def check_covered(rules: EstablishmentRules, establishment_id: int, described: str) -> int:
    if rules.allowed_ids is not None and establishment_id not in rules.allowed_ids:
        raise ItemStopped("skipped", f"{described.capitalize()} is not covered by this configuration.")
    return establishment_id


async def check_link(
    log: RunLog, people: list[LuccaUser], request: HireRequest, linked_user_id: int | None
) -> LuccaUser | None:
    """The user this partner record was linked to, if Lucca still holds them as the same person; else a warning.

    Lucca does not reuse ids, but a deleted or merged user (or a restored account) can leave a link to someone else.
    """
    if linked_user_id is None:
        return None
    user = next((person for person in people if person.id == linked_user_id), None)
    if user is not None and still_the_person(user, request):
        return user
    if user is None:
        message = f"This candidate was linked to Lucca user {linked_user_id}, who is no longer in Lucca"
    else:
        message = (
            f"This candidate was linked to Lucca user {linked_user_id}, who is now "
            f"{user.first_name} {user.last_name} ({user.personal_email or 'no personal e-mail'}), not "
            f"{request.first_name} {request.last_name}"
        )
    await log.event("note", request.subject, f"{message}: the link was ignored and the person looked up again.",
                    level="warning")  # fmt: skip
    return None


def still_the_person(user: LuccaUser, request: HireRequest) -> bool:
    """Same personal email (ignoring case), or same first and last names (ignoring case and accents)."""
    if request.personal_email and (user.personal_email or "").casefold() == request.personal_email.casefold():
        return True
    names = (comparable(request.first_name), comparable(request.last_name))
    return (comparable(user.first_name or ""), comparable(user.last_name or "")) == names


def find_same_person(people: list[LuccaUser], request: HireRequest) -> LuccaUser | None:
    """The same person: same personal email, or (without one) same names and start date (contract section 7)."""
    if request.personal_email:
        wanted = request.personal_email.casefold()
        return next((p for p in people if (p.personal_email or "").casefold() == wanted), None)
    names = (comparable(request.first_name), comparable(request.last_name))
    return next(
        (
            p
            for p in people
            if (comparable(p.first_name or ""), comparable(p.last_name or "")) == names
            and p.dt_contract_start == request.start_date
        ),
        None,
    )


async def record_same_person(log: RunLog, request: HireRequest, user: LuccaUser) -> None:
    """Our own earlier attempt (a retry after a crash or a lost answer) counts as created; anyone else is linked."""
    if user.login and user.login.casefold() in log.state.get("attempted_logins", []):
        await log.item(ITEM, "created", "create", request.subject, describe_created(user, request))
        return
    message = (
        f"{request.first_name} {request.last_name} is already in Lucca as user {user.id} ({user.login}); "
        "linked to it instead of creating a duplicate."
    )
    await log.item(ITEM, "linked", "link", request.subject, message)


async def pick_manager(
    lucca: LuccaClient, log: RunLog, people: list[LuccaUser], request: HireRequest, today: date
) -> int | None:
    """The chosen manager if still employed; else the department's head when still employed."""
    by_id = {person.id: person for person in people}
    if request.manager_id is not None:
        manager = by_id.get(request.manager_id)
        if manager is None or not manager.is_employed_on(today):
            raise ItemStopped("failed", f"The chosen manager (Lucca user {request.manager_id}) is no longer employed.")
        return manager.id
    department = await find_department(lucca, request.department_id)
    if department.head_id is None:
        await log.event("note", request.subject, f"Department {department.name} has no head: no manager is set.")
        return None
    head = by_id.get(department.head_id)
    if head is None or not head.is_employed_on(today):
        name = f"{head.first_name} {head.last_name}" if head else "someone no longer in Lucca"
        message = (
            f"The head of department {department.name}, {name} (user {department.head_id}), is no longer "
            "employed, so the new employee has no manager. Set one in Lucca."
        )
        await log.event("note", request.subject, message, level="warning")
        return None
    return head.id


async def find_department(lucca: LuccaClient, department_id: int) -> Department:
    departments = await lucca.list_departments()
    department = next((item for item in departments if item.id == department_id), None)
    if department is None:
        raise ItemStopped("failed", f"Department {department_id} does not exist in Lucca: check the settings.")
    return department


async def create_with_free_login(
    lucca: LuccaClient,
    log: RunLog,
    people: list[LuccaUser],
    request: HireRequest,
    establishment_id: int,
    manager_id: int | None,
) -> LuccaUser:
    """POST the user with the first free address; a login Lucca refuses as used takes the next suffix."""
    taken = {value.casefold() for person in people for value in (person.login, person.mail) if value}
    refusals = 0
    for address in login_candidates(request):
        if address.casefold() in taken:
            continue
        attempted = log.state.get("attempted_logins", [])
        await log.remember("attempted_logins", [*attempted, address.casefold()])
        try:
            return await lucca.create_user(user_body(request, address, establishment_id, manager_id))
        except PartnerRejected as refused:
            refusals += 1
            if not says_address_taken(refused) or refusals >= MAX_LOGIN_REFUSALS:
                raise ItemStopped("failed", f"Lucca refused the new employee: {refused.message}") from None
            taken.add(address.casefold())
            await log.event("note", request.subject, f"Lucca says {address} is in use; trying the next one.")
    raise ItemStopped("failed", f"The login {request.personal_email} is already used by someone else in Lucca.")


def says_address_taken(refused: PartnerRejected) -> bool:
    """Lucca's 400 for a login (or mail) someone holds; its wording is not documented, so read it loosely."""
    text = refused.message.lower()
    about_login = "login" in text or "identifiant" in text
    mail_taken = "mail" in text and any(word in text for word in ("already", "in use", "exist", "taken", "déjà"))
    return refused.status == 400 and (about_login or mail_taken) and not ("required" in text or "requis" in text)


def login_candidates(request: HireRequest) -> Iterator[str]:
    if request.email_template:
        address = work_email.render(request.email_template, request.first_name, request.last_name)
        return work_email.candidates(address)
    return iter([request.personal_email] if request.personal_email else [])


def user_body(request: HireRequest, address: str, establishment_id: int, manager_id: int | None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "firstName": request.first_name,
        "lastName": request.last_name,
        "mail": address if request.email_template else None,
        "login": address,
        "legalEntityId": establishment_id,
        "departmentId": request.department_id,
        "rolePrincipalId": request.role_principal_id,
        "jobTitle": request.job_title,
        "personalEmail": request.personal_email,
        "personalMobile": request.phone,
        "address": request.address,
        "dtContractStart": f"{request.start_date.isoformat()}T00:00:00",
        "managerId": manager_id,
    }
    return {key: value for key, value in body.items() if value is not None}


def describe_created(user: LuccaUser, request: HireRequest) -> str:
    return (
        f"Created {request.first_name} {request.last_name} in Lucca as user {user.id} "
        f"(login {user.login}), starting {request.start_date.isoformat()}."
    )
