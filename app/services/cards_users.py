"""Lucca → Cards: employees as Cards users, departments as groups (contract section 9).

Who can be imported is read from the tenant's copy of Lucca's directory (app.directory, never Lucca itself):
current employees, matched to Cards users by professional e-mail (`mail`) ignoring case. Which Cards user (or
group) each one became is kept per Cards space. An import asked for before the copy's first full sync completed
waits for it on the run's backoff schedule (DirectoryLoading), starting that sync if none is under way.

An import is a run whose items are people, each checkpointed as it finishes (RunLog.item), so an attempt cut by
the job's deadline or a dying worker resumes where it stopped. A person created in Cards whose checkpoint was lost
is found by the next attempt (by the create noted before it was sent, or by the link the run wrote after it), never
created twice, and counts as created by the run.
One import at a time per Cards space (an account lock), so that two runs never create the same person.
"""

import json
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.clients.cards import CardsAuthFailed, CardsClient, CardsGroup, CardsRejected, CardsUser
from app.clients.lucca import Department
from app.crypto import SecretBox
from app.db import Sessionmaker
from app.directory import reads
from app.directory.readiness import wait_for_directory
from app.directory.reads import Person
from app.models import Connector, Run, RunItem, Tenant
from app.schemas.cards import CardsSettings
from app.schemas.cards_imports import (
    CardsDepartmentList,
    CardsDepartmentRow,
    CardsUserStatus,
    DepartmentsImport,
    UsersImport,
)
from app.schemas.directory_load import DirectoryLoad
from app.services.connectors import connector_settings, enabled_connector
from app.services.context import Services
from app.services.links import (
    created_by,
    creates_sent,
    group_links,
    note_create_sent,
    save_group_link,
    save_user_link,
    user_links,
)
from app.services.locks import account_lock
from app.services.run_log import WENT_THROUGH, Action, Outcome, RunLog
from app.services.runs import new_run

SOURCE = "cards"
USERS_IMPORT = "users_import"
DEPARTMENTS_IMPORT = "departments_import"
LOCK_SCOPE = "cards-import"


def cards_settings(box: SecretBox, connector: Connector) -> CardsSettings:
    settings: CardsSettings = connector_settings(box, connector)
    return settings


async def directory_of(services: Services, tenant: Tenant) -> tuple[list[Person], dict[int, Department]]:
    """The current employees and every department, from the copy (complete: see `wait_for_directory`)."""
    async with services.sessionmaker() as session:
        employees = await reads.current_employees(session, tenant.id, reads.today_of(tenant))
        departments = await reads.departments(session, tenant.id)
    return employees, {department.id: department for department in departments}


def email_key(person: Person) -> str | None:
    """The e-mail that matches a Cards user, compared ignoring case; None when there is none."""
    mail = (person.mail or "").strip()
    return mail.casefold() if mail else None


def subject_of(person: Person) -> str:
    return (person.mail or "").strip() or f"{person.first_name} {person.last_name} (Lucca {person.id})"


@dataclass(frozen=True)
class Directory:
    """The current employees, grouped by e-mail: an e-mail held by two of them matches no one."""

    by_email: dict[str, list[Person]]
    # Each person's e-mail key, worked out once (a listing may hold 20,000).
    keys: dict[int, str | None]

    @classmethod
    def of(cls, employees: Iterable[Person]) -> "Directory":
        by_email: dict[str, list[Person]] = defaultdict(list)
        keys: dict[int, str | None] = {}
        for person in employees:
            keys[person.id] = key = email_key(person)
            if key is not None:
                by_email[key].append(person)
        return cls(dict(by_email), keys)

    def status(self, person: Person) -> CardsUserStatus:
        """Whether the person can be imported (not saying whether they were)."""
        key = self.keys[person.id]
        if key is None:
            return "missing_email"
        return "duplicate_email" if len(self.by_email[key]) > 1 else "not_imported"

    def problem(self, person: Person) -> str | None:
        """Why the person cannot be imported, in plain words; None when they can."""
        status = self.status(person)
        if status == "missing_email":
            return "no professional e-mail (mail) in Lucca, which is how Cards users are matched"
        if status == "duplicate_email":
            key = email_key(person)
            assert key is not None
            others = ", ".join(
                f"{other.first_name} {other.last_name} (Lucca {other.id})"
                for other in self.by_email[key]
                if other.id != person.id
            )
            return f"another current employee has the same e-mail ignoring case ({others}): fix it in Lucca first"
        return None


# ----------------------------------------------------------------------------------------------------
# Listings: the links and the directory's copy, in the request's session (no partner call).


async def listing_source(
    session: AsyncSession, box: SecretBox, tenant: Tenant
) -> tuple[CardsSettings, DirectoryLoad, list[Person]]:
    """The connector's settings (409 when missing or disabled), how far the copy is, and its current employees
    (none until it is complete)."""
    settings = cards_settings(box, await enabled_connector(session, tenant, SOURCE))
    load = await reads.load_state(session, tenant.id)
    employees = await reads.current_employees(session, tenant.id, reads.today_of(tenant)) if load.ready else []
    return settings, load, employees


async def users_listing(session: AsyncSession, box: SecretBox, tenant: Tenant, status: CardsUserStatus | None) -> bytes:
    """Every current employee, whether imported into Cards, and whether they can be: the answer's JSON (a
    CardsUserList), written from plain rows, as a listing may hold 20,000 and answers within 300 ms."""
    settings, load, employees = await listing_source(session, box, tenant)
    links = await user_links(session, tenant.id, settings.space_id)
    answer = {"items": user_rows(employees, links, status), "directory": load.model_dump(mode="json")}
    return json.dumps(answer, ensure_ascii=False, separators=(",", ":")).encode()


async def departments_listing(session: AsyncSession, box: SecretBox, tenant: Tenant) -> CardsDepartmentList:
    """Every active department, its current employees counted, and whether it is a Cards group yet."""
    settings, load, employees = await listing_source(session, box, tenant)
    links = await group_links(session, tenant.id, settings.space_id)
    departments = await reads.departments(session, tenant.id, active_only=True) if load.ready else []
    return CardsDepartmentList(items=department_rows(departments, employees, links), directory=load)


def user_rows(
    employees: Sequence[Person], links: dict[int, int], status: CardsUserStatus | None
) -> list[dict[str, Any]]:
    """One CardsUserRow per current employee (those of `status` only, when given), as plain values."""
    directory = Directory.of(employees)
    rows = [
        {
            "lucca_id": person.id,
            "first_name": person.first_name,
            "last_name": person.last_name,
            "email": person.mail,
            "department": person.department_name,
            "cards_user_id": links.get(person.id),
            "status": "imported" if person.id in links else directory.status(person),
        }
        for person in employees
    ]
    return [row for row in rows if status is None or row["status"] == status]


def department_rows(
    departments: Sequence[Department], employees: Sequence[Person], links: dict[int, int]
) -> list[CardsDepartmentRow]:
    """One row per active department, with its current employees counted."""
    members: dict[int, int] = defaultdict(int)
    for person in employees:
        if person.department_id is not None:
            members[person.department_id] += 1
    return [
        CardsDepartmentRow(
            lucca_id=department.id,
            name=department.name,
            members=members[department.id],
            imported=department.id in links,
        )
        for department in departments
        if department.is_active
    ]


# ----------------------------------------------------------------------------------------------------
# Queuing the imports (the route commits, then queues).


async def queue_import(
    session: AsyncSession, tenant: Tenant, operation: str, request: UsersImport | DepartmentsImport
) -> Run:
    """Store the import's run; the Cards connector must be set up and enabled (409 otherwise)."""
    await enabled_connector(session, tenant, SOURCE)
    run = new_run(tenant, SOURCE, operation, "api", {"request": request.model_dump(mode="json", exclude_none=True)})
    session.add(run)
    await session.flush()
    return run


# ----------------------------------------------------------------------------------------------------
# Running the imports.


@dataclass(frozen=True)
class Account:
    """A person's Cards user, and how this attempt came to it (`said`: a sentence for the person's event)."""

    user: CardsUser
    created: bool
    said: str
    # Created by an earlier attempt whose answer was lost: from what the person was then, which may have changed.
    earlier: bool = False


@dataclass
class CardsSpace:
    """One attempt's view of the Cards space, kept current as it goes: its users as listed at the start (an import),
    or only those it asked for, the whole space being listed once when a person's e-mail must be looked up (what
    `auto_sync` does for a few changes, one call per person)."""

    cards: CardsClient
    space_id: str
    tenant_id: uuid.UUID
    sessionmaker: Sessionmaker
    log: RunLog
    source: str
    notify: bool
    links: dict[int, int]
    # Creates sent and not linked yet, by Lucca id: the e-mail each was sent with.
    sent: dict[int, str]
    # Lucca ids whose link this run's create made (an earlier attempt's, whose item was not counted).
    created: set[int]
    by_email: dict[str, CardsUser] = field(default_factory=dict)
    by_id: dict[int, CardsUser] = field(default_factory=dict)
    listed: bool = False
    # Lucca id by Cards user id: the other side of `links`, so that linking someone costs the same for any space.
    holders: dict[int, int] = field(init=False)

    def __post_init__(self) -> None:
        self.holders = {cards_id: lucca_id for lucca_id, cards_id in self.links.items()}

    def remember(self, user: CardsUser) -> None:
        self.by_id[user.id] = user
        if user.email:
            self.by_email[user.email.casefold()] = user

    async def list_users(self) -> None:
        """Read every user of the space, once per attempt (what an earlier attempt created is found here)."""
        if self.listed:
            return
        async for page in self.cards.user_pages():
            for user in page:
                self.by_id[user.id] = user
                if user.email:
                    self.by_email.setdefault(user.email.casefold(), user)
        self.listed = True

    async def user(self, user_id: int) -> CardsUser | None:
        """The space's user of this id, asked for when the space was not listed; None when it has none."""
        if user_id in self.by_id or self.listed:
            return self.by_id.get(user_id)
        try:
            user = await self.cards.user(user_id)
        except CardsAuthFailed:
            raise
        except CardsRejected as refused:
            if refused.status == 404:
                return None
            raise
        self.remember(user)
        return user

    async def with_email(self, key: str) -> CardsUser | None:
        """The space's user with this e-mail (case-folded): only a listed space knows."""
        return self.by_email.get(key) if self.listed else None

    async def link(self, person: Person, user: CardsUser, *, created: bool = False) -> None:
        """Link the person to this user (`created`: by this run's create); its link to someone else goes."""
        run_id = self.log.run_id if created else None
        await save_user_link(self.sessionmaker, self.tenant_id, self.space_id, person.id, user.id, run_id)
        self.unlink(self.holders.get(user.id, person.id))
        self.unlink(person.id)
        self.links[person.id] = user.id
        self.holders[user.id] = person.id
        if created:
            self.created.add(person.id)

    def unlink(self, lucca_id: int) -> None:
        """Forget the person's link here (save_user_link or forget_user_link changed the stored one)."""
        cards_id = self.links.pop(lucca_id, None)
        if cards_id is not None and self.holders.get(cards_id) == lucca_id:
            del self.holders[cards_id]
        self.created.discard(lucca_id)


def item_id(person: Person) -> str:
    return str(person.id)


@asynccontextmanager
async def import_lock(services: Services, settings: CardsSettings) -> AsyncIterator[None]:
    """One import at a time per Cards space, whichever tenant runs it (LockBusy: the run waits its turn); only
    tenants whose token Cards accepts for that space share its lock."""
    space = await services.cards(settings).proven_account()
    async with account_lock(services.engine, services.redis, LOCK_SCOPE, space):
        yield


async def open_space(
    services: Services,
    tenant: Tenant,
    settings: CardsSettings,
    log: RunLog,
    *,
    source: str,
    notify: bool,
    listed: bool = True,
) -> CardsSpace:
    """The links, and the space's users when `listed` (else read as they are needed)."""
    cards = services.cards(settings)
    async with services.sessionmaker() as session:
        links = await user_links(session, tenant.id, settings.space_id)
        sent = await creates_sent(session, tenant.id, settings.space_id)
        created = await created_by(session, tenant.id, settings.space_id, log.run_id)
    space = CardsSpace(
        cards, settings.space_id, tenant.id, services.sessionmaker, log, source, notify, links, sent, created
    )
    if listed:
        await space.list_users()
    return space


async def settled_before(sessionmaker: Sessionmaker, run: Run) -> set[str]:
    """The items that went through in the runs this one retries (their ledgers): a retry redoes only the others
    (the failures, and what a run that gave up never reached)."""
    lineage: list[uuid.UUID] = []
    retried = run.retry_of
    async with sessionmaker() as session:
        while retried is not None and retried not in lineage and retried != run.id:
            lineage.append(retried)
            retried = await session.scalar(select(Run.retry_of).where(Run.id == retried))
        went_through = select(RunItem.item_id).where(RunItem.run_id.in_(lineage), RunItem.outcome.in_(WENT_THROUGH))
        return set(await session.scalars(went_through)) if lineage else set()


async def count_items(sessionmaker: Sessionmaker, log: RunLog, items: Iterable[str]) -> None:
    """The run's total, known once it has read Lucca: the items it has done and those it is about to do (read
    again on each attempt, as people come and go)."""
    total = len(await log.done_items() | set(items))
    async with sessionmaker.begin() as session:
        run = await session.scalar(select(Run).where(Run.id == log.run_id).with_for_update())
        assert run is not None
        run.counts = {**run.counts, "total": total}


async def ensure_account(
    space: CardsSpace, person: Person, directory: Directory, groups: Sequence[int | str] = ()
) -> Account | None:
    """The person's Cards user: linked before, else the one with their e-mail (linked now), else created (in
    `groups`). A space not listed is listed only when a create was sent before or Cards refuses the e-mail.

    None when the person cannot be imported or Cards refused to create them: that outcome is recorded.
    """
    linked_id = space.links.get(person.id)
    linked = await space.user(linked_id) if linked_id is not None else None
    if linked is not None and person.id in space.created:
        # This run's create, linked by an attempt cut (its deadline, a dying worker) before it counted the person.
        return Account(linked, created=True, said=f"Created in Cards as user {linked.id} by an earlier attempt.")
    if linked is not None:
        return Account(linked, created=False, said=f"Already in Cards as user {linked.id}.")
    problem = directory.problem(person)
    if problem is not None:
        await space.log.item(item_id(person), "skipped", "skip", subject_of(person), f"Not imported: {problem}.")
        return None
    key = email_key(person)
    assert key is not None and person.mail is not None
    if person.id in space.sent:
        await space.list_users()
        ours = space.by_email.get(space.sent[person.id].casefold())
        if ours is not None:
            # An earlier attempt's create whose answer was lost (the e-mail may have changed in Lucca since).
            await space.link(person, ours, created=True)
            said = f"Created in Cards as user {ours.id} by an earlier attempt."
            return Account(ours, created=True, said=said, earlier=True)
    found = await space.with_email(key)
    if found is not None:
        return await linked_by_email(space, person, found)
    await note_create_sent(space.sessionmaker, space.tenant_id, space.space_id, person.id, person.mail.strip())
    try:
        user = await space.cards.create_user(
            firstname=person.first_name or "",
            lastname=person.last_name or "",
            email=person.mail.strip(),
            source=space.source,
            notify=space.notify,
            groups=groups,
        )
    except CardsAuthFailed:
        raise
    except CardsRejected as refused:
        if not space.listed and refused.status == 422:
            # Most likely a user Cards already has with this e-mail: found by listing the space once.
            await space.list_users()
            found = space.by_email.get(key)
            if found is not None:
                return await linked_by_email(space, person, found)
        await space.log.item(item_id(person), "failed", "fail", subject_of(person), refused.message)
        return None
    space.remember(user)
    await space.link(person, user, created=True)
    invited = "invited by e-mail" if space.notify else "not notified"
    return Account(
        user, created=True, said=f"Created in Cards as user {user.id} (signs in with {space.source}, {invited})."
    )


async def process_users_import(services: Services, run: Run, tenant: Tenant, connector: Connector, log: RunLog) -> None:
    """Each wanted current employee becomes a Cards user: linked when one has their e-mail, else created."""
    request = UsersImport.model_validate(run.input["request"])
    settings = cards_settings(services.box, connector)
    await wait_for_directory(services, tenant)  # before the space's lock: a wait must not hold it
    async with import_lock(services, settings):
        employees, _ = await directory_of(services, tenant)
        chosen = set(request.lucca_ids or ())
        wanted = employees if request.lucca_ids is None else [person for person in employees if person.id in chosen]
        unknown = sorted(chosen - {person.id for person in employees})
        settled = await settled_before(services.sessionmaker, run)
        wanted = [person for person in wanted if item_id(person) not in settled]
        unknown = [lucca_id for lucca_id in unknown if str(lucca_id) not in settled]
        await count_items(services.sessionmaker, log, [*map(item_id, wanted), *map(str, unknown)])
        for lucca_id in unknown:
            message = "No current employee has this Lucca id (a former employee, or no such user): not imported."
            await log.item(str(lucca_id), "skipped", "skip", f"Lucca {lucca_id}", message)
        done = await log.done_items()
        remaining = [person for person in wanted if item_id(person) not in done]
        if not remaining:
            return
        source = request.login_mode or settings.login_mode
        notify = settings.notify_created_users if request.notify is None else request.notify
        space = await open_space(services, tenant, settings, log, source=source, notify=notify)
        directory = Directory.of(employees)
        for person in remaining:
            account = await ensure_account(space, person, directory)
            if account is not None:
                outcome: Outcome = "created" if account.created else "linked"
                action: Action = "create" if account.created else "link"
                await log.item(item_id(person), outcome, action, subject_of(person), account.said)


async def linked_by_email(space: CardsSpace, person: Person, found: CardsUser) -> Account:
    await space.link(person, found)
    return Account(found, created=False, said=f"Cards user {found.id} has this e-mail: linked, not created.")


def find_group(groups: Iterable[CardsGroup], name: str) -> CardsGroup | None:
    """The group of this name: the same spelling first, else ignoring case."""
    groups = list(groups)
    exact = next((group for group in groups if group.name == name), None)
    return exact or next((group for group in groups if group.name.casefold() == name.casefold()), None)


@dataclass
class GroupImport:
    """One department's group as the import goes: None until Cards has it (made with the first member)."""

    department: Department
    group: CardsGroup | None


def wanted_departments(
    request: DepartmentsImport, departments: dict[int, Department]
) -> tuple[list[Department], list[int]]:
    """The active departments the request names (all of them for `all`), and the ids it names that are not."""
    if request.department_ids is None:
        return [department for department in departments.values() if department.is_active], []
    active = {i for i in request.department_ids if i in departments and departments[i].is_active}
    chosen = [departments[i] for i in request.department_ids if i in active]
    return chosen, [i for i in request.department_ids if i not in active]


async def process_departments_import(
    services: Services, run: Run, tenant: Tenant, connector: Connector, log: RunLog
) -> None:
    """Each wanted department becomes a Cards group of the same name, with its current employees in it."""
    request = DepartmentsImport.model_validate(run.input["request"])
    settings = cards_settings(services.box, connector)
    await wait_for_directory(services, tenant)  # before the space's lock: a wait must not hold it
    async with import_lock(services, settings):
        employees, departments = await directory_of(services, tenant)
        chosen, unknown = wanted_departments(request, departments)
        members: dict[int, list[Person]] = {department.id: [] for department in chosen}
        for person in employees:
            if person.department_id in members:
                members[person.department_id].append(person)
        settled = await settled_before(services.sessionmaker, run)
        items = [item_id(person) for people in members.values() for person in people]
        items = [item for item in [*items, *(f"department-{i}" for i in unknown)] if item not in settled]
        await count_items(services.sessionmaker, log, items)
        for department_id in unknown:
            if f"department-{department_id}" not in settled:
                await skip_department(log, department_id, departments.get(department_id))
        done = await log.done_items()
        if all(item in done for item in items) and all(members.values()):
            return
        space = await open_space(
            services, tenant, settings, log, source=settings.login_mode, notify=settings.notify_created_users
        )
        groups = await space.cards.groups()
        async with services.sessionmaker() as session:
            linked_groups = await group_links(session, tenant.id, settings.space_id)
        directory = Directory.of(employees)
        for department in chosen:
            target = GroupImport(department, department_group(groups, department, linked_groups))
            if target.group is not None:
                await save_group_link(
                    services.sessionmaker, tenant.id, settings.space_id, department.id, target.group.id
                )
            people = [person for person in members[department.id] if item_id(person) not in settled]
            await import_department(space, target, people, directory, empty=not members[department.id])
            if target.group is not None and target.group not in groups:
                groups.append(target.group)  # made now: a later department of the same name joins it


def department_group(groups: list[CardsGroup], department: Department, links: dict[int, int]) -> CardsGroup | None:
    """The department's group: the one of its name, else the one it was linked to (renamed since), else none yet."""
    by_name = find_group(groups, department.name)
    linked = next((group for group in groups if group.id == links.get(department.id)), None)
    return by_name or linked


async def skip_department(log: RunLog, department_id: int, department: Department | None) -> None:
    if department is None:
        message = "Lucca has no department with this id: nothing imported."
    else:
        message = f"Department {department.name} is archived in Lucca: nothing imported."
    await log.item(f"department-{department_id}", "skipped", "skip", f"Department {department_id}", message)


async def import_department(
    space: CardsSpace, target: GroupImport, members: list[Person], directory: Directory, *, empty: bool
) -> None:
    """Put each of these current members in the department's group, keeping the groups they already have;
    `empty` when the department has no current member at all."""
    name = target.department.name
    if empty:
        if target.group is None:
            said = f"Department {name} has no current employee: its Cards group will be created with its first member."
        else:
            group = f"{target.group.name} ({target.group.id})"
            said = f"Department {name} is Cards group {group}; it has no current employee to put in it."
        await space.log.event("note", name, said)
        return
    for person in members:
        if await space.log.is_done(item_id(person)):
            continue
        account = await ensure_account(space, person, directory)
        if account is not None:
            await join_group(space, target, person, account)


async def join_group(space: CardsSpace, target: GroupImport, person: Person, account: Account) -> None:
    """Send the member's full list of groups with this one added (a PUT replaces them all); no PUT when it is in."""
    name = target.department.name
    kept = [group for group in account.user.groups if target.group is None or group.id != target.group.id]
    if target.group is not None and len(kept) < len(account.user.groups):
        said = f"{account.said} Already in group {target.group.name}."
        await space.log.item(item_id(person), "linked", "link", subject_of(person), said)
        return
    wanted: list[int | str] = [*(group.id for group in kept), target.group.id if target.group else name]
    try:
        user = await space.cards.set_groups(account.user.id, wanted)
    except CardsAuthFailed:
        raise
    except CardsRejected as refused:
        said = f"{account.said} Could not be put in group {name}: {refused.message}"
        await space.log.item(item_id(person), "failed", "fail", subject_of(person), said)
        return
    space.remember(user)
    if target.group is None:
        await group_made(space, target, user)
    others = f", keeping {', '.join(group.name for group in kept)}" if kept else ""
    said = f"{account.said} Put in group {name}{others}."
    outcome: Outcome = "created" if account.created else "updated"
    action: Action = "create" if account.created else "update"
    await space.log.item(item_id(person), outcome, action, subject_of(person), said)


async def group_made(space: CardsSpace, target: GroupImport, user: CardsUser) -> None:
    """Cards made the group from its name with the first member: note its id for the next members."""
    name = target.department.name
    group = find_group(user.groups, name)
    if group is None:
        raise CardsRejected(SOURCE, 502, f"Cards answered without the group {name} it was asked to create")
    target.group = group
    await save_group_link(space.sessionmaker, space.tenant_id, space.space_id, target.department.id, group.id)
    await space.log.event("create", name, f"Cards group {group.name} ({group.id}) created for department {name}.")
