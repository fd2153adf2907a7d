"""Cards follows the directory's copy on its own: contract 5.3 `auto_sync`, run operation `changes` (section 6).

- The poller's 2-second pass (`due_follows`) finds the tenants whose copy moved beyond their cursor
  (`cards_follow_states.seen_seq`), or whose contracts may have ended since the last look (hourly: a date passing
  changes no row), and queues one `cards.follow` job per tenant a few seconds later, so that changes arriving
  together share a run.
- The job (`plan_changes`, no Cards call) works out each changed employee's *view*, what Cards shows of them under
  the settings (names and e-mail, department, whether they left, why they cannot be a Cards user), and compares it
  with the view Cards was last brought in line with (`cards_followed_people`). A change Cards does not show costs
  nothing; the people Cards must follow make one `changes` run (trigger `change`); nobody: no run. The cursor moves
  in the transaction that makes the run.
- The run (`process_changes`) reads each person's row again (the last state wins), under the space's import lock (an
  import and auto_sync never create the same person), and brings Cards in line: one call per user created or renamed,
  two for a move (the user's groups are read first, as a PUT replaces them all and groups made by hand stay).
- Other settings or another space start over, without cursor or views: every employee is planned, which brings the
  space in line once (the space's users are listed once for it).
"""

import hashlib
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Literal, NamedTuple

from sqlalchemy import and_, delete, exists, func, or_, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.clients.cards import CardsAuthFailed, CardsGroup, CardsRejected, CardsUser
from app.directory import reads
from app.directory.readiness import ready_follower
from app.models import Connector, Run, Tenant
from app.models.base import utcnow
from app.models.cards import CardsFollowedPerson, CardsFollowState
from app.models.directory import DirectoryDepartment, DirectoryEmployee, DirectoryState
from app.queue import enqueue_run
from app.schemas.cards import AutoSync, CardsSettings
from app.services.cards_users import (
    SOURCE,
    CardsSpace,
    Directory,
    cards_settings,
    count_items,
    email_key,
    ensure_account,
    find_group,
    import_lock,
    item_id,
    open_space,
    settled_before,
    subject_of,
)
from app.services.context import Services
from app.services.links import forget_user_link, group_links, save_group_link, user_links
from app.services.run_log import Action, Outcome, RunLog
from app.services.runs import new_run

CHANGES = "changes"
CHANGE = "change"  # the trigger of a run that directory changes started
# Changes arriving within this long of the first share a run.
GATHER_SECONDS = 3.0
# Contracts end on a date without any row changing: looked for this often.
LEAVERS_EVERY = timedelta(hours=1)
# A run with more people than this whose Cards user must be read lists the space instead (500 a call).
LIST_ABOVE = 20
# The run's state notes the person whose write was sent last, with its words: a write whose answer was lost leaves
# Cards changed, which the next attempt must still count as the run's change.
WRITE_SENT = "write_sent"

Task = Literal["create", "update", "leave", "skip"]
Employee = DirectoryEmployee


class Row(NamedTuple):
    """An employee as auto_sync reads them from the copy (former and gone ones too)."""

    id: int
    first_name: str | None
    last_name: str | None
    mail: str | None
    department_id: int | None
    department_name: str | None
    contract_end: date | None
    gone: bool

    def person(self) -> reads.Person:
        return reads.Person(
            self.id, self.first_name, self.last_name, self.mail, self.department_id, self.department_name
        )


def settings_key(stored: dict[str, Any]) -> str:
    """What a pass was made for, from the connector's stored settings: other settings or another space start over."""
    what = {"space_id": stored.get("space_id"), "auto_sync": stored.get("auto_sync")}
    return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()


def follows() -> Any:
    """SQL: the connector's stored settings follow something (settings stored before auto_sync follow nothing)."""
    auto = Connector.settings["auto_sync"]
    return or_(
        auto["users"].as_boolean().is_(True),
        func.coalesce(auto["departments"].as_string(), "none") != "none",
        func.coalesce(auto["leavers"].as_string(), "keep") != "keep",
    )


def busy_changes(tenant_id: Any) -> Any:
    """SQL: a changes run of the tenant is queued or running (the next one waits for it)."""
    return exists().where(
        Run.tenant_id == tenant_id,
        Run.connector == SOURCE,
        Run.operation == CHANGES,
        Run.status.in_(("queued", "running")),
    )


async def due_follows(session: AsyncSession) -> list[uuid.UUID]:
    """The tenants whose Cards connector follows the directory and has something to look at: no pass yet or other
    settings since, a copy changed beyond the cursor, or the hourly look for ended contracts; none with a changes
    run queued or running. The states of connectors that follow nothing any more are forgotten first (switching back
    on brings the space in line again)."""
    await session.execute(
        delete(CardsFollowState).where(
            ~exists().where(
                Connector.tenant_id == CardsFollowState.tenant_id,
                Connector.kind == SOURCE,
                Connector.enabled.is_(True),
                follows(),
            )
        )
    )
    state = CardsFollowState
    changed = or_(
        exists().where(Employee.tenant_id == Connector.tenant_id, Employee.change_seq > state.seen_seq),
        exists().where(
            DirectoryDepartment.tenant_id == Connector.tenant_id, DirectoryDepartment.change_seq > state.seen_seq
        ),
    )
    rows = await session.execute(
        select(
            Connector.tenant_id,
            Connector.settings,
            state.settings_key,
            or_(state.tenant_id.is_(None), changed, state.leavers_checked_at < utcnow() - LEAVERS_EVERY),
        )
        .join(Tenant, Tenant.id == Connector.tenant_id)
        .join(DirectoryState, DirectoryState.tenant_id == Connector.tenant_id)
        .outerjoin(state, state.tenant_id == Connector.tenant_id)
        .where(
            Connector.kind == SOURCE,
            Connector.enabled.is_(True),
            follows(),
            Tenant.deleted_at.is_(None),
            DirectoryState.last_full_sync_at.is_not(None),
            ~busy_changes(Connector.tenant_id),
        )
    )
    return [tenant_id for tenant_id, stored, key, moved in rows if moved or key != settings_key(stored)]


# ----------------------------------------------------------------------------------------------------
# What Cards shows of a person, and what it takes to bring it in line.


def row_query(tenant_id: uuid.UUID) -> Any:
    department = DirectoryDepartment
    named = and_(department.tenant_id == Employee.tenant_id, department.lucca_id == Employee.department_id)
    return (
        select(Employee.lucca_id, Employee.first_name, Employee.last_name, Employee.email, Employee.department_id,
               department.name, Employee.contract_end, Employee.gone_at.is_not(None))
        .outerjoin(department, named)
        .where(Employee.tenant_id == tenant_id)
    )  # fmt: skip


@dataclass
class Scene:
    """What a pass knows of the tenant's space: the links, the department groups, the views Cards was brought in
    line with, and the current employees sharing the e-mails concerned (an e-mail held twice matches no one)."""

    follow: AutoSync
    today: date
    links: dict[int, int]
    groups: dict[int, int]
    active_departments: dict[int, str]
    views: dict[int, dict[str, Any]]
    directory: Directory

    def view(self, row: Row) -> dict[str, Any]:
        """What Cards shows of the person under the settings."""
        gone = left(row, self.today)
        view: dict[str, Any] = {"left": gone, "problem": None}
        if self.follow.users:
            view |= {"first_name": row.first_name or "", "last_name": row.last_name or "", "email": mail_of(row)}
        if self.follow.departments != "none":
            view["department_id"] = row.department_id
        if not gone:
            status = self.directory.status(row.person())
            view["problem"] = status if status in ("missing_email", "duplicate_email") else None
        return view

    def in_scope(self, row: Row) -> bool:
        """Whether the person should have a Cards user: everyone with `users`, else the members of the departments
        whose groups are followed (as a department import makes accounts for its members)."""
        if self.follow.users:
            return True
        return self.target_group(row.department_id) is not None

    def target_group(self, department_id: int | None) -> int | str | None:
        """The group the department's members belong in: its group's id, or its name when `all` makes it with the
        first member; None when departments are not followed there."""
        if self.follow.departments == "none" or department_id is None:
            return None
        linked = self.groups.get(department_id)
        if linked is not None:
            return linked
        if self.follow.departments == "all":
            return self.active_departments.get(department_id)
        return None

    def moved(self, row: Row) -> bool:
        """Whether the person's department group may change: their Cards user is read first, as a PUT of `groups`
        replaces them all and groups made by hand stay."""
        before = self.views.get(row.id)
        return self.follow.departments != "none" and (
            before is None or before["left"] or before.get("department_id") != row.department_id
        )

    def reads_user(self, row: Row, task: Task) -> bool:
        """Whether bringing the person in line reads their Cards user (a rename known from its view does not)."""
        if task == "leave":
            return self.follow.leavers != "delete"
        return task == "update" and (row.id not in self.views or self.moved(row))

    def task(self, row: Row) -> Task | None:
        """What bringing Cards in line with the person takes; None: nothing."""
        view = self.view(row)
        before = self.views.get(row.id)
        linked = row.id in self.links
        if view["left"]:
            done = before is not None and before["left"]
            return "leave" if linked and self.follow.leavers != "keep" and not done else None
        if view["problem"] is not None:
            news = before is None or before.get("problem") != view["problem"]
            return "skip" if news and (linked or self.in_scope(row)) else None
        if not linked:
            return "create" if self.in_scope(row) else None
        return None if before == view else "update"


def left(row: Row, today: date) -> bool:
    """Gone from Lucca, or their contract ended before today (a leaver)."""
    return row.gone or (row.contract_end is not None and row.contract_end < today)


def mail_of(row: Row) -> str | None:
    return (row.mail or "").strip() or None


async def load_scene(
    session: AsyncSession, tenant: Tenant, settings: CardsSettings, rows: Sequence[Row], fresh: bool
) -> Scene:
    """The scene for these people (`fresh`: a new start, no view counts)."""
    space = settings.space_id
    today = reads.today_of(tenant)
    ids = [row.id for row in rows]
    views: dict[int, dict[str, Any]] = {}
    keys = {key for row in rows if (key := (mail_of(row) or "").casefold())}
    if not fresh:
        found = await session.execute(
            select(CardsFollowedPerson.lucca_user_id, CardsFollowedPerson.view, CardsFollowedPerson.email_key).where(
                CardsFollowedPerson.tenant_id == tenant.id,
                CardsFollowedPerson.space_id == space,
                CardsFollowedPerson.lucca_user_id.in_(ids),
            )
        )
        for lucca_id, view, key in found:
            views[lucca_id] = view
            if key:
                keys.add(key)
    # Everyone current who holds one of these e-mails, so that a duplicate is seen (and one that ended).
    people: dict[int, reads.Person] = {}
    if keys:
        sharing = await session.execute(
            select(Employee.lucca_id, Employee.first_name, Employee.last_name, Employee.email, Employee.department_id)
            .where(reads.current(tenant.id, today), reads.lowered_email().in_(keys))
        )  # fmt: skip
        for lucca_id, first_name, last_name, mail, department_id in sharing:
            people[lucca_id] = reads.Person(lucca_id, first_name, last_name, mail, department_id, None)
    for row in rows:
        if not left(row, today):
            people.setdefault(row.id, row.person())
    departments = await session.execute(
        select(DirectoryDepartment.lucca_id, DirectoryDepartment.name).where(
            DirectoryDepartment.tenant_id == tenant.id,
            DirectoryDepartment.gone_at.is_(None),
            DirectoryDepartment.active,
        )
    )
    return Scene(
        follow=settings.auto_sync,
        today=today,
        links=await user_links(session, tenant.id, space),
        groups=await group_links(session, tenant.id, space),
        active_departments={lucca_id: name for lucca_id, name in departments},
        views=views,
        directory=Directory.of(people.values()),
    )


# ----------------------------------------------------------------------------------------------------
# The job: which people Cards must follow, as one run.


async def changed_rows(session: AsyncSession, tenant: Tenant, seen: int, cursor: int, leavers: bool) -> list[Row]:
    """The people changed beyond the cursor (or whose department did); with `leavers`, also those Cards still knows as current whose contract
    has ended since; and the current people who share an e-mail with any of them, before or after the change (a
    duplicate may have begun or ended)."""
    query = row_query(tenant.id)
    # A department's change (made, renamed, archived) concerns its members: under "all" its group waits for it.
    departments = select(DirectoryDepartment.lucca_id).where(
        DirectoryDepartment.tenant_id == tenant.id, DirectoryDepartment.change_seq.between(seen + 1, cursor)
    )
    changed = or_(Employee.change_seq.between(seen + 1, cursor), Employee.department_id.in_(departments))
    found = {row.id: row for row in map(Row._make, await session.execute(query.where(changed)))}
    if leavers:
        followed = select(CardsFollowedPerson.lucca_user_id).where(
            CardsFollowedPerson.tenant_id == tenant.id, CardsFollowedPerson.view["left"].as_boolean().is_(False)
        )
        ended = query.where(Employee.contract_end < reads.today_of(tenant), Employee.lucca_id.in_(followed))
        found |= {row.id: row for row in map(Row._make, await session.execute(ended))}
    keys = {key for row in found.values() if (key := (mail_of(row) or "").casefold())}
    old_keys = select(CardsFollowedPerson.email_key).where(
        CardsFollowedPerson.tenant_id == tenant.id,
        CardsFollowedPerson.lucca_user_id.in_(list(found)),
        CardsFollowedPerson.email_key.is_not(None),
    )
    keys |= {key for key in await session.scalars(old_keys) if key}
    if keys:
        sharing = query.where(reads.current(tenant.id, reads.today_of(tenant)), reads.lowered_email().in_(keys))
        for row in map(Row._make, await session.execute(sharing)):
            found.setdefault(row.id, row)
    return list(found.values())


async def plan_changes(services: Services, tenant_id: uuid.UUID) -> uuid.UUID | None:
    """The job queued for a tenant whose copy changed: the people Cards must follow become a changes run (queued;
    its id returned), and the cursor moves past what was looked at. Nothing when auto_sync follows nothing, the copy
    is not complete, a changes run is queued or running (the poller comes back once it ends), or nobody needs
    anything."""
    follower = await ready_follower(services, tenant_id, SOURCE)
    if follower is None:
        return None
    tenant, connector = follower.tenant, follower.connector
    settings: CardsSettings = follower.settings
    async with services.sessionmaker() as session:
        state = await session.get(CardsFollowState, tenant_id)
    if not settings.auto_sync.active:
        return None
    key = settings_key(connector.settings)
    fresh = state is None or state.settings_key != key
    seen = 0 if state is None or fresh else state.seen_seq
    leavers = state is None or fresh or state.leavers_checked_at < utcnow() - LEAVERS_EVERY
    cursor = await reads.change_cursor(services.sessionmaker, tenant_id)
    async with services.sessionmaker() as session:
        rows = await changed_rows(session, tenant, seen, cursor, leavers and not fresh)
        scene = await load_scene(session, tenant, settings, rows, fresh)
    wanted = sorted(row.id for row in rows if scene.task(row) is not None)
    async with services.sessionmaker.begin() as session:
        # The connector's row is the lock: one pass at a time, none beside a queued or running changes run.
        await session.execute(select(Connector.id).where(Connector.id == connector.id).with_for_update())
        if await session.scalar(select(busy_changes(tenant_id))):
            return None
        now = await session.get(CardsFollowState, tenant_id, populate_existing=True)
        if (now and (now.settings_key, now.seen_seq)) != (state and (state.settings_key, state.seen_seq)):
            return None  # another pass went first: the poller comes back
        if fresh:
            await session.execute(delete(CardsFollowedPerson).where(CardsFollowedPerson.tenant_id == tenant_id))
        values = {"tenant_id": tenant_id, "space_id": settings.space_id, "settings_key": key, "seen_seq": cursor}
        if leavers:
            values["leavers_checked_at"] = utcnow()
        given = insert(CardsFollowState).values({"leavers_checked_at": utcnow(), **values})
        await session.execute(given.on_conflict_do_update(index_elements=["tenant_id"], set_=values))
        if not wanted:
            return None
        run = new_run(tenant, SOURCE, CHANGES, CHANGE, {"lucca_ids": wanted, "change_seq": cursor, "in_line": fresh})
        run.counts = {**run.counts, "total": len(wanted)}
        session.add(run)
        await session.flush()
        run_id = run.id
    await enqueue_run(services.redis, run_id)
    return run_id


# ----------------------------------------------------------------------------------------------------
# The run: bring Cards in line, person by person.


async def process_changes(services: Services, run: Run, tenant: Tenant, connector: Connector, log: RunLog) -> None:
    """Each person of the run, as the copy holds them now, brought in line in Cards (retries redo only the people
    who failed or were not reached)."""
    settings = cards_settings(services.box, connector)
    settled = await settled_before(services.sessionmaker, run)
    async with import_lock(services, settings):
        async with services.sessionmaker() as session:
            query = row_query(tenant.id).where(Employee.lucca_id.in_(run.input["lucca_ids"]))
            rows = [Row._make(row) for row in await session.execute(query.order_by(Employee.lucca_id))]
            scene = await load_scene(session, tenant, settings, rows, fresh=False)
        done = await log.done_items()
        tasks = {
            row.id: task
            for row in rows
            if item_id(row.person()) not in settled and str(row.id) not in done and (task := scene.task(row))
        }
        await count_items(services.sessionmaker, log, map(str, tasks))
        if tasks:
            reads_needed = sum(1 for row in rows if row.id in tasks and scene.reads_user(row, tasks[row.id]))
            space = await open_space(
                services,
                tenant,
                settings,
                log,
                source=settings.login_mode,
                notify=settings.notify_created_users,
                listed=bool(run.input.get("in_line")) or reads_needed > LIST_ABOVE,
            )
            follower = Follower(services, tenant, space, scene)
            for row in rows:
                if row.id in tasks:
                    await follower.act(row, tasks[row.id])
        await count_items(services.sessionmaker, log, ())  # people found in line already are not items


@dataclass
class Follower:
    """One run's work on the space."""

    services: Services
    tenant: Tenant
    space: CardsSpace
    scene: Scene

    async def act(self, row: Row, task: Task) -> None:
        try:
            if task == "skip":
                problem = self.scene.directory.problem(row.person())
                said = "Cards user left as it is" if row.id in self.space.links else "Not in Cards"
                await self.done(row, "skipped", "skip", f"{said}: {problem}.")
            elif task == "create":
                await self.create(row)
            elif task == "update":
                await self.update(row)
            else:
                await self.leave(row)
        except CardsAuthFailed:
            raise
        except CardsRejected as refused:
            await self.space.log.item(str(row.id), "failed", "fail", subject(row), refused.message)

    async def done(self, row: Row, outcome: Outcome | None, action: Action, said: str) -> None:
        """Remember what Cards now shows of the person, then count the item (None: nothing needed doing)."""
        await save_view(self.services, self.tenant.id, self.space.space_id, row, self.scene.view(row))
        if outcome is not None:
            await self.space.log.item(str(row.id), outcome, action, subject(row), said)

    async def create(self, row: Row) -> None:
        target = self.scene.target_group(row.department_id)
        account = await ensure_account(
            self.space, row.person(), self.scene.directory, [] if target is None else [target]
        )
        if account is None:
            return  # skipped or refused: ensure_account counted it
        if not account.created or account.earlier:
            if account.earlier and isinstance(target, str) and find_group(account.user.groups, target):
                await self.group_of(row, target, account.user)  # made by name with that create
            # A user found (linked, or made by an earlier attempt before the person changed) is brought in line.
            outcome: Outcome = "created" if account.created else "linked"
            action: Action = "create" if account.created else "link"
            await self.update(row, account.user, said=account.said, outcome=outcome, action=action)
            return
        said = account.said
        if target is not None:
            group = await self.group_of(row, target, account.user)
            said += f" In group {group.name}."
        await self.done(row, "created", "create", said)

    async def update(
        self,
        row: Row,
        user: CardsUser | None = None,
        *,
        said: str = "",
        outcome: Outcome = "updated",
        action: Action = "update",
    ) -> None:
        """Send what changed (names, e-mail, the department's group), in one PUT; nothing when Cards is in line."""
        cards_id = self.space.links[row.id]
        before = self.scene.views.get(row.id)
        moved = self.scene.moved(row)
        sent = self.sent_before(row)
        # After a write whose answer was lost, what Cards has is read rather than the write sent again.
        if user is None and (before is None or moved or sent is not None):
            user = await self.space.user(cards_id)
            if user is None:
                await self.lost(row, cards_id)
                return
        fields, changes = self.names(row, user, before)
        if moved and user is not None:
            groups, words = self.groups(row, user)
            if groups is not None:
                fields["groups"] = groups
                changes.append(words)
        if fields:
            await self.sending(row, changes)
            try:
                updated = await self.space.cards.update_user(cards_id, fields)
            except CardsRejected as refused:
                if refused.status == 404 and not isinstance(refused, CardsAuthFailed):
                    await self.lost(row, cards_id)
                    return
                raise
            self.space.remember(updated)
            target = self.scene.target_group(row.department_id)
            if isinstance(target, str) and "groups" in fields:
                await self.group_of(row, target, updated)
        said = " ".join(part for part in [said, *(changes if fields or sent is None else sent)] if part)
        await self.done(row, outcome if fields or sent is not None or outcome != "updated" else None, action, said)

    def sent_before(self, row: Row) -> list[str] | None:
        """The words of the person's write that an earlier attempt sent last (its answer lost); None: none."""
        sent: dict[str, Any] | None = self.space.log.state.get(WRITE_SENT)
        return sent["words"] if sent is not None and sent["item"] == str(row.id) else None

    async def sending(self, row: Row, words: list[str]) -> None:
        await self.space.log.remember(WRITE_SENT, {"item": str(row.id), "words": words})

    def names(
        self, row: Row, user: CardsUser | None, before: dict[str, Any] | None
    ) -> tuple[dict[str, Any], list[str]]:
        """The names and e-mail Cards must change (compared with the user read, else with what it was given)."""
        if not self.scene.follow.users:
            return {}, []
        if user is not None:
            known = {"firstname": user.firstname or "", "lastname": user.lastname or "", "email": user.email}
        elif before is not None:
            known = {"firstname": before["first_name"], "lastname": before["last_name"], "email": before["email"]}
        else:
            return {}, []
        wanted = {"firstname": row.first_name or "", "lastname": row.last_name or "", "email": mail_of(row)}
        fields = {
            name: value
            for name, value in wanted.items()
            if value is not None and (value.casefold() if name == "email" else value) != (
                (known[name] or "").casefold() if name == "email" else known[name]
            )
        }  # fmt: skip
        words = []
        if "firstname" in fields or "lastname" in fields:
            words.append(f"Renamed in Cards from {known['firstname']} {known['lastname']} to "
                         f"{wanted['firstname']} {wanted['lastname']}.")  # fmt: skip
        if "email" in fields:
            words.append(f"E-mail changed in Cards from {known['email'] or 'none'} to {wanted['email']}.")
        return fields, words

    def groups(self, row: Row, user: CardsUser) -> tuple[list[int | str] | None, str]:
        """The user's groups with the department's group in place of any other the service manages; None when that
        is what they have."""
        managed = set(self.scene.groups.values())
        target = self.scene.target_group(row.department_id)
        kept = [group for group in user.groups if group.id not in managed]
        wanted: list[int | str] = [group.id for group in kept]
        if target is not None:
            wanted.append(target)
        if set(wanted) == {group.id for group in user.groups}:
            return None, ""
        left = [group.name for group in user.groups if group.id in managed and group.id != target]
        joined = None
        if target is not None and target not in {group.id for group in user.groups}:
            joined = target if isinstance(target, str) else row.department_name or f"{target}"
        return wanted, moved_words(left, joined, [group.name for group in kept])

    async def group_of(self, row: Row, name: str | int, user: CardsUser) -> CardsGroup:
        """The department's group as Cards answered it; made now when it was named: linked to the department."""
        if isinstance(name, int):
            return next((group for group in user.groups if group.id == name), CardsGroup(id=name, name=str(name)))
        group = find_group(user.groups, name)
        if group is None:
            raise CardsRejected(SOURCE, 502, f"Cards answered without the group {name} it was asked to create")
        assert row.department_id is not None
        await save_group_link(self.services.sessionmaker, self.tenant.id, self.space.space_id, row.department_id,
                              group.id)  # fmt: skip
        self.scene.groups[row.department_id] = group.id
        said = f"Cards group {group.name} ({group.id}) created for department {name}."
        await self.space.log.event("create", name, said)
        return group

    async def leave(self, row: Row) -> None:
        """A leaver: deleted, or taken out of the groups the service manages (`leavers`)."""
        cards_id = self.space.links[row.id]
        why = "no longer in Lucca" if row.gone else f"contract ended on {row.contract_end}"
        if self.scene.follow.leavers == "delete":
            deleted = await self.space.cards.delete_user(cards_id)
            await forget_user_link(self.services.sessionmaker, self.tenant.id, self.space.space_id, row.id)
            self.space.unlink(row.id)
            said = f"Cards user {cards_id} deleted" if deleted else f"Cards user {cards_id} was already deleted"
            await self.done(row, "suspended", "suspend", f"Left the company ({why}): {said}.")
            return
        user = await self.space.user(cards_id)
        if user is None:
            await self.lost(row, cards_id)
            return
        managed = set(self.scene.groups.values())
        out = [group for group in user.groups if group.id in managed]
        if not out:
            sent = self.sent_before(row)
            await self.done(row, None if sent is None else "updated", "update", " ".join(sent or ()))
            return
        kept = [group for group in user.groups if group.id not in managed]
        words = f"Left the company ({why}): " + moved_words(
            [group.name for group in out], None, [group.name for group in kept]
        )
        await self.sending(row, [words])
        # The one PUT that may empty `groups`: leaving every group is what is meant.
        self.space.remember(await self.space.cards.update_user(cards_id, {"groups": [group.id for group in kept]}))
        await self.done(row, "updated", "update", words)

    async def lost(self, row: Row, cards_id: int) -> None:
        """The linked Cards user is no longer in the space (deleted in Cards): the link goes, and a current person
        who should be in Cards is created again."""
        await forget_user_link(self.services.sessionmaker, self.tenant.id, self.space.space_id, row.id)
        self.space.unlink(row.id)
        self.scene.views.pop(row.id, None)
        if not left(row, self.scene.today) and self.scene.in_scope(row):
            await self.create(row)
            return
        said = f"Cards user {cards_id} is no longer in the space: nothing left to change."
        await self.done(row, "skipped", "skip", said)


def moved_words(left: Sequence[str], joined: str | None, kept: Sequence[str]) -> str:
    """A move in plain words: "Moved from group Sales to group Engineering, keeping Mentors."."""
    if left and joined:
        said = f"Moved from group {', '.join(left)} to group {joined}"
    elif joined:
        said = f"Put in group {joined}"
    else:
        said = f"Taken out of group {', '.join(left)}"
    return said + (f", keeping {', '.join(kept)}." if kept else ".")


def subject(row: Row) -> str:
    return subject_of(row.person())


async def save_view(services: Services, tenant_id: uuid.UUID, space_id: str, row: Row, view: dict[str, Any]) -> None:
    key = email_key(row.person())
    given = insert(CardsFollowedPerson).values(
        tenant_id=tenant_id, space_id=space_id, lucca_user_id=row.id, view=view, email_key=key
    )
    async with services.sessionmaker.begin() as session:
        await session.execute(
            given.on_conflict_do_update(
                index_elements=["tenant_id", "space_id", "lucca_user_id"], set_={"view": view, "email_key": key}
            )
        )
