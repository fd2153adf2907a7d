"""The hire pipeline: a candidate becomes exactly one Lucca employee (contract section 7).

It knows nothing of any ATS payload: Softgarden and Taleez each build a `HireRequest` and call `hire_candidate`.
"""

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from pydantic import BaseModel, Field

from app.clients.http import PartnerRejected
from app.clients.lucca import (
    MIN_LIKE_CHARS,
    PARTNER,
    Department,
    Establishment,
    LuccaClient,
    LuccaUnavailable,
    LuccaUser,
)
from app.services import work_email
from app.services.names import address_part, same_name, same_name_as
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

    @property
    def lookup_email(self) -> str | None:
        """The personal e-mail when it is an address: anything else (`n/a`, `-`) finds no one."""
        email = self.personal_email
        return email if email is not None and work_email.is_address(email) else None


class ItemStopped(Exception):
    """The candidate cannot go further; `outcome` says whether that is a failure or a deliberate skip."""

    def __init__(self, outcome: Outcome, message: str) -> None:
        super().__init__(message)
        self.outcome = outcome
        self.message = message


class FoundInLucca(Exception):
    """The person turned out to be in Lucca already, found while creating; `ours` when this run created them."""

    def __init__(self, user: LuccaUser, *, ours: bool) -> None:
        super().__init__(user.id)
        self.user = user
        self.ours = ours


@dataclass(frozen=True)
class Hired:
    """The Lucca user the candidate became; `created` when this run made them (not someone found already there)."""

    user: LuccaUser
    created: bool


async def hire_candidate(
    lucca: LuccaClient, log: RunLog, request: HireRequest, *, today: date, linked_user_id: int | None
) -> Hired | None:
    """Create (or link) the employee and record the outcome; returns the Lucca user, None when stopped.

    The caller holds the account's hire lock: the lookups and the create must not interleave with another hire's.
    Every lookup asks Lucca for the few users it concerns (filters), never for the directory.
    """
    try:
        establishment_id = request.establishment_id or await pick_establishment(lucca, log, request)
        department = None if request.manager_id is not None else await find_department(lucca, request.department_id)
        manager_id = request.manager_id if department is None else department.head_id
        # One call for the stored link and the manager to check.
        known = await lucca.users_by_id(user_id for user_id in (linked_user_id, manager_id) if user_id is not None)
        linked = await check_link(log, known, request, linked_user_id)
        same = linked or await find_same_person(lucca, request)
        if same is not None:
            return Hired(same, await record_same_person(log, request, same))
        manager_id = await pick_manager(log, known, department, request, today)
        user = await create_with_free_login(lucca, log, request, establishment_id, manager_id)
    except FoundInLucca as found:
        return Hired(found.user, await record_same_person(log, request, found.user, ours=found.ours))
    except ItemStopped as stop:
        await record_stop(log, request, stop)
        return None
    await log.item(ITEM, "created", "create", request.subject, describe_created(user, request))
    return Hired(user, created=True)


async def refused_before_lucca(log: RunLog, request: HireRequest) -> bool:
    """Record the stop of a candidate that no call to Lucca can help (its names); False when it may go on."""
    try:
        check_names(request)
    except ItemStopped as stop:
        await record_stop(log, request, stop)
        return True
    return False


async def record_stop(log: RunLog, request: HireRequest, stop: ItemStopped) -> None:
    action: Action = "skip" if stop.outcome == "skipped" else "fail"
    await log.item(ITEM, stop.outcome, action, request.subject, stop.message)


def check_names(request: HireRequest) -> None:
    """A name without any letter or digit, in any script, gives no address and matches no one: stop before Lucca."""
    for label, name in (("first name", request.first_name), ("last name", request.last_name)):
        if not address_part(name):
            raise ItemStopped(
                "failed",
                f"The candidate's {label} {name!r} has no letter or digit, so no address can be made from it and "
                "no one can be matched by it. Nothing was sent to Lucca.",
            )


async def pick_establishment(lucca: LuccaClient, log: RunLog, request: HireRequest) -> int:
    """Alias first, then the one active establishment with the same name, else the default when no company."""
    rules = request.establishment_rules
    company = request.company
    if not company:
        if rules.default_id is None:
            raise ItemStopped("failed", "The candidate has no company and no default establishment is configured.")
        return check_covered(rules, rules.default_id, "the default establishment")
    is_company = same_name_as(company)
    alias = rules.aliases.get(company) or next(
        (target for name, target in rules.aliases.items() if is_company(name)), None
    )
    if alias is not None:
        await log.event("note", request.subject, f"Company {company!r} is an alias of establishment {alias}.")
        return check_covered(rules, alias, f"establishment {alias}")
    establishments = await lucca.list_establishments()
    active = [place for place in establishments if not place.is_archived]
    matches = [place for place in active if is_company(place.name)]
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
    log: RunLog, known: Mapping[int, LuccaUser], request: HireRequest, linked_user_id: int | None
) -> LuccaUser | None:
    """The user this partner record was linked to, if Lucca still holds them as the same person; else a warning.

    Lucca does not reuse ids, but a deleted or merged user (or a restored account) can leave a link to someone else.
    """
    if linked_user_id is None:
        return None
    user = known.get(linked_user_id)
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
    return same_email(user, request) or same_names(user, request)


def same_email(user: LuccaUser, request: HireRequest) -> bool:
    email = request.lookup_email
    return email is not None and (user.personal_email or "").casefold() == email.casefold()


def same_names(user: LuccaUser, request: HireRequest) -> bool:
    """Same first and last names, in any script, ignoring case and accents."""
    return same_name(request.first_name, user.first_name or "") and same_name(request.last_name, user.last_name or "")


def is_same_person(user: LuccaUser, request: HireRequest) -> bool:
    """Same personal email, or (the candidate giving none) same names and start date (contract section 7)."""
    if request.lookup_email:
        return same_email(user, request)
    return same_names(user, request) and user.dt_contract_start == request.start_date


async def find_same_person(lucca: LuccaClient, request: HireRequest) -> LuccaUser | None:
    """The same person in Lucca, former and future employees included, asked for by filter.

    Lucca's equality filters are strict (case included) and `like` ignores case but not accents, so Lucca is asked
    for a superset (the email as a substring; everyone starting within a day of the date) and the rule is applied
    here, exactly.
    """
    if request.lookup_email:
        filters = {"personalEmail": f"like,{request.lookup_email}"}
    else:
        day = request.start_date
        # Both bounds a day away, whether Lucca's `between` includes its bounds or not.
        filters = {"dtContractStart": f"between,{day - timedelta(days=1)},{day + timedelta(days=1)}"}
    people = await lucca.list_users(filters=filters)
    return next((person for person in people if is_same_person(person, request)), None)


async def record_same_person(log: RunLog, request: HireRequest, user: LuccaUser, *, ours: bool | None = None) -> bool:
    """Our own earlier attempt (a retry after a crash or a lost answer) counts as created; anyone else is linked.
    Returns whether it was ours."""
    if ours is None:
        ours = bool(user.login) and (user.login or "").casefold() in log.state.get("attempted_logins", [])
    if ours:
        await log.item(ITEM, "created", "create", request.subject, describe_created(user, request))
        return True
    message = (
        f"{request.first_name} {request.last_name} is already in Lucca as user {user.id} ({user.login}); "
        "linked to it instead of creating a duplicate."
    )
    await log.item(ITEM, "linked", "link", request.subject, message)
    return False


async def pick_manager(
    log: RunLog, known: Mapping[int, LuccaUser], department: Department | None, request: HireRequest, today: date
) -> int | None:
    """The chosen manager if still employed; else the department's head when still employed."""
    if request.manager_id is not None:
        manager = known.get(request.manager_id)
        if manager is None or not manager.is_employed_on(today):
            raise ItemStopped("failed", f"The chosen manager (Lucca user {request.manager_id}) is no longer employed.")
        return manager.id
    if department is None:
        raise ItemStopped("failed", f"Department {request.department_id} does not exist in Lucca: check the settings.")
    if department.head_id is None:
        await log.event("note", request.subject, f"Department {department.name} has no head: no manager is set.")
        return None
    head = known.get(department.head_id)
    if head is None or not head.is_employed_on(today):
        name = f"{head.first_name} {head.last_name}" if head else "someone no longer in Lucca"
        message = (
            f"The head of department {department.name}, {name} (user {department.head_id}), is no longer "
            "employed, so the new employee has no manager. Set one in Lucca."
        )
        await log.event("note", request.subject, message, level="warning")
        return None
    return head.id


async def find_department(lucca: LuccaClient, department_id: int) -> Department | None:
    """The department (from the cached structure), None when Lucca has no such department."""
    departments = await lucca.list_departments()
    return next((item for item in departments if item.id == department_id), None)


async def taken_addresses(lucca: LuccaClient, request: HireRequest) -> set[str]:
    """Logins and mails (lower-cased) held in Lucca that this hire's addresses could collide with."""
    address = first_address(request)
    if address is None:
        return set()
    # Every candidate address (`lea.roux@…`, `lea.roux2@…`) contains the first one's local part; one too short to
    # narrow the lookup (`li@…`) gives way to the whole address, and Lucca's "in use" finds the suffixes' holders.
    local = address.rpartition("@")[0]
    fragment = local if request.email_template and len(local) >= MIN_LIKE_CHARS else address
    fields = ("login", "mail") if request.email_template else ("login",)
    taken: set[str] = set()
    for name in fields:
        people = await lucca.list_users(filters={name: f"like,{fragment}"}, fields=("id", "login", "mail"))
        taken |= {value.casefold() for person in people for value in (person.login, person.mail) if value}
    return taken


async def holder_of(lucca: LuccaClient, address: str) -> LuccaUser | None:
    """Who holds this address as login, else as mail, in Lucca (ignoring case), if the API key can see them."""
    for name in ("login", "mail"):
        people = await lucca.list_users(filters={name: f"like,{address}"})
        wanted = address.casefold()
        holder = next((person for person in people if (getattr(person, name) or "").casefold() == wanted), None)
        if holder is not None:
            return holder
    return None


async def create_with_free_login(
    lucca: LuccaClient, log: RunLog, request: HireRequest, establishment_id: int, manager_id: int | None
) -> LuccaUser:
    """POST the user with the first free address; a login held or refused as used takes the next suffix.

    Unless this run already sent that login: its earlier create (whose answer was lost) may have landed since the
    lookup, so the holder is looked at again, and when it is the person, that user is this run's own.
    """
    taken = await taken_addresses(lucca, request)
    refusals = 0
    for address in login_candidates(request):
        attempted = log.state.get("attempted_logins", [])
        sent_before = address.casefold() in attempted
        if address.casefold() in taken:
            if sent_before:
                await check_holder(lucca, request, address, sent_before=True)
            continue
        if not sent_before:
            await log.remember("attempted_logins", [*attempted, address.casefold()])
        try:
            return await lucca.create_user(user_body(request, address, establishment_id, manager_id))
        except PartnerRejected as refused:
            refusals += 1
            if not says_address_taken(refused) or refusals >= MAX_LOGIN_REFUSALS:
                raise ItemStopped("failed", f"Lucca refused the new employee: {refused.message}") from None
        await check_holder(lucca, request, address, sent_before=sent_before)
        taken.add(address.casefold())
        await log.event("note", request.subject, f"Lucca says {address} is in use; trying the next one.")
    raise ItemStopped("failed", f"The login {request.personal_email} is already used by someone else in Lucca.")


async def check_holder(lucca: LuccaClient, request: HireRequest, address: str, *, sent_before: bool) -> None:
    """After Lucca refused `address` as used: raise FoundInLucca when its holder is the person; else return."""
    holder = await holder_of(lucca, address)
    if holder is not None and is_same_person(holder, request):
        raise FoundInLucca(holder, ours=sent_before)
    if holder is None and sent_before:
        # Lucca holds a login this run sent before, but shows no one with it yet: look again later, never suffix.
        raise LuccaUnavailable(
            PARTNER,
            f"Lucca says {address}, which this run sent before, is in use but shows no user with it yet",
        )


def says_address_taken(refused: PartnerRejected) -> bool:
    """Lucca's 400 for a login (or mail) someone holds; its wording is not documented, so read it loosely."""
    text = refused.message.lower()
    about_login = "login" in text or "identifiant" in text
    mail_taken = "mail" in text and any(word in text for word in ("already", "in use", "exist", "taken", "déjà"))
    return refused.status == 400 and (about_login or mail_taken) and not ("required" in text or "requis" in text)


def first_address(request: HireRequest) -> str | None:
    """The address the hire's login starts from: the rendered template, else the personal email."""
    if request.email_template:
        return work_email.render(request.email_template, request.first_name, request.last_name)
    return request.lookup_email


def login_candidates(request: HireRequest) -> Iterator[str]:
    address = first_address(request)
    if address is None:
        return iter([])
    return work_email.candidates(address) if request.email_template else iter([address])


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
