"""Lucca → Elevo: the people file over SFTP (contract section 10).

A sync signs in to Elevo's SFTP server first (a wrong host key or password fails the run before anything is read),
builds the file while paging through the directory's copy (`people_file`; no Lucca call: a sync asked for before
the copy's first full sync completed waits for it, as uploading a file without everyone would suspend them),
uploads it under a temporary name and renames it, and only then, in one transaction, remembers who was in it and
writes the run's counts and events; one sync of a tenant at a time, so that files reach Elevo in the order of the
states they hold. A run whose upload failed changes nothing, so the next one compares with the last file Elevo
really took; an attempt that takes over one cut short finds whether its file reached the server (`send_file`).

Everyone considered (listed by Lucca now, or in the last file) has one outcome: `created` (in the file for the first
time), `updated` (in it again), `skipped` (left out, with the reason) or `suspended` (in the last file but not in
this one, so Elevo suspends them). Until the file is uploaded, the run counts one item: the file.

Events say what changed, not the whole directory every night: each suspended person, and each person newly left out
(a current employee the last file did not leave out for the same reason) have their own; the others left out
(departed people who were not in the last file, and those left out again for the same reason) are counted in one.
"""

import asyncio
import hashlib
import shutil
import tempfile
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import delete, exists, func, insert, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.clients.sftp import RemoteFile, SftpAccount, SftpClient
from app.crypto import SecretBox
from app.db import Sessionmaker
from app.directory import reads
from app.directory.readiness import ready_follower, wait_for_directory
from app.models import Connector, Run, RunEvent, Tenant
from app.models.base import utcnow
from app.models.directory import DirectoryDepartment, DirectoryEmployee, DirectoryState
from app.models.elevo import ElevoPersonLeftOut, ElevoPersonSent, ElevoPushState
from app.queue import enqueue_run
from app.schemas.elevo import ElevoPreview, ElevoSettings, LeftOutPerson
from app.services.connectors import connector_settings, enabled_connector
from app.services.context import Services
from app.services.locks import account_lock
from app.services.people_file import DEPARTED, LeftOut, PeopleFile, read_people
from app.services.run_log import Action, RunLog, sentence
from app.services.runs import new_run

SOURCE = "elevo"
PEOPLE_SYNC = "people_sync"
LOCK_SCOPE = "elevo-file"
CHANGE = "change"  # the trigger of a run push_on_change queued
DEFAULT_INTERVAL_MINUTES = 10
FILE_NAME = "users-%Y%m%d-%H%M%S.csv"
# The run's state while its file goes to Elevo's server (`send_file`): where, its hash, and the step reached.
UPLOAD = "upload"
WRITING, RENAMING, RECORDED = "writing", "renaming", "recorded"
SUBJECT_CHARS = 300  # the events' subject column
BATCH_ROWS = 1000  # rows per INSERT: what is sent stays small, whatever the directory's size
Item = TypeVar("Item")


def elevo_settings(box: SecretBox, connector: Connector) -> ElevoSettings:
    settings: ElevoSettings = connector_settings(box, connector)
    return settings


def local_now(tenant: Tenant) -> datetime:
    return datetime.now(ZoneInfo(tenant.timezone))


def sftp_client(services: Services, settings: ElevoSettings) -> SftpClient:
    sftp = settings.sftp
    account = SftpAccount(
        host=sftp.host,
        port=sftp.port,
        username=sftp.username,
        host_key=sftp.host_key,
        remote_dir=sftp.remote_dir,
        password=sftp.password,
        private_key=sftp.private_key,
        passphrase=sftp.passphrase,
    )
    config = services.settings
    return SftpClient(
        account,
        retry=services.retry,
        timeout_seconds=config.partner_timeout_seconds,
        allow_private=config.allow_http_upstreams,
    )


@asynccontextmanager
async def scratch_directory() -> AsyncIterator[Path]:
    """A private directory for the file being built, removed afterwards (made and removed off the event loop)."""
    path = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="elevo-"))
    try:
        yield path
    finally:
        await asyncio.to_thread(shutil.rmtree, path, True)


async def queue_people_sync(session: AsyncSession, tenant: Tenant) -> Run:
    """Store a sync's run (the caller commits, then queues it); 409 when the connector is missing or disabled."""
    await enabled_connector(session, tenant, SOURCE)
    run = new_run(tenant, SOURCE, PEOPLE_SYNC, "api", {})
    run.counts = {**run.counts, "total": 1}
    session.add(run)
    await session.flush()
    return run


async def preview_people(session: AsyncSession, box: SecretBox, tenant: Tenant) -> ElevoPreview:
    """The rows a sync would upload now, and who it would leave out, from the directory's copy (empty until it is
    complete); uploads nothing. 409 when the connector is missing or disabled."""
    settings = elevo_settings(box, await enabled_connector(session, tenant, SOURCE))
    directory = await reads.load_state(session, tenant.id)
    if not directory.ready:
        return ElevoPreview(rows=[], left_out=[], directory=directory)
    async with scratch_directory() as workdir:
        people = await read_people(session, tenant.id, settings, reads.today_of(tenant), workdir)
        rows = await asyncio.to_thread(people.rows)
    left_out = [
        LeftOutPerson(lucca_id=p.lucca_id, name=p.name, email=p.email, reason=p.reason) for p in people.left_out
    ]
    return ElevoPreview(rows=rows, left_out=left_out, directory=directory)


@dataclass(frozen=True, slots=True)
class BuiltFile:
    """A file built from the copy: its people, where it is, its hash, and the copy's `change_seq` it takes in."""

    people: PeopleFile
    path: Path
    digest: str
    cursor: int


async def process_people_sync(services: Services, run: Run, tenant: Tenant, connector: Connector, log: RunLog) -> None:
    """The queued job's work: check the SFTP account, build the file from the copy, upload it, then record it."""
    settings = elevo_settings(services.box, connector)
    if not run.counts.get("total"):
        await set_counts(services.sessionmaker, run.id, {"total": 1})  # a scheduled run: the file is its item
    if run.state.get(UPLOAD, {}).get("step") == RECORDED:
        return  # an earlier attempt uploaded and recorded the file, and stopped before closing the run
    # One file of a tenant on its way at a time (a busy lock: the run waits its turn), so that files reach Elevo in
    # the order of the states they hold, and one on change sees what was sent before it. The lock is the tenant's
    # own: no other tenant shares it.
    async with account_lock(services.engine, services.redis, LOCK_SCOPE, str(tenant.id)):
        sftp = sftp_client(services, settings)
        await sftp.check()
        async with scratch_directory() as workdir:
            await wait_for_directory(services, tenant)
            built = await build_file(services, tenant, settings, workdir)
            remote = await send_file(services, run, tenant, sftp, built, log)
        if remote is not None:
            where = f"{remote} on {settings.sftp.host}"
            await record_upload(services.sessionmaker, run.id, tenant, built.people, where, built.cursor, built.digest)


async def send_file(
    services: Services, run: Run, tenant: Tenant, sftp: SftpClient, built: BuiltFile, log: RunLog
) -> str | None:
    """Upload the built file and return its path on the server; None for a file on change that Elevo has already.

    Each step is noted in the run's state before it is taken, so that an attempt taking over from one that stopped
    (a worker killed, the deadline) finds whether that one's file reached the server: the same file is recorded as
    sent, not sent again; a partial one is removed."""
    earlier: dict[str, Any] | None = run.state.get(UPLOAD)
    reached = False
    if earlier is not None:
        target = RemoteFile(earlier["final"], earlier["temporary"])
        reached = await sftp.settle(target, rename_asked=earlier["step"] == RENAMING)
        if reached and earlier["digest"] == built.digest:
            return target.final
    # (An earlier state that reached the server is what Elevo has now, whatever was recorded: this one goes.)
    if run.trigger == CHANGE and not reached and built.digest == await last_sent_hash(services.sessionmaker, tenant.id):
        # Another upload (nightly, asked for) sent this very state since the run was queued: not twice.
        await record_unchanged(services.sessionmaker, tenant.id, built.cursor, run.id)
        return None
    target = sftp.remote_file(local_now(tenant).strftime(FILE_NAME))
    step = {"final": target.final, "temporary": target.temporary, "digest": built.digest}
    await log.remember(UPLOAD, {**step, "step": WRITING})
    await sftp.upload(built.path, target, lambda: log.remember(UPLOAD, {**step, "step": RENAMING}))
    return target.final


async def build_file(services: Services, tenant: Tenant, settings: ElevoSettings, workdir: Path) -> BuiltFile:
    """The people file from the copy as it is now; the cursor is read first, so that a change written while the
    file is built is beyond it (and picked up by the next file)."""
    cursor = await reads.change_cursor(services.sessionmaker, tenant.id)
    async with services.sessionmaker() as session:
        people = await read_people(session, tenant.id, settings, reads.today_of(tenant), workdir)
    path = workdir / "users.csv"
    await asyncio.to_thread(people.write_csv, path)
    digest = await asyncio.to_thread(file_hash, path)
    return BuiltFile(people, path, digest, cursor)


def file_hash(path: Path) -> str:
    """SHA-256 of the file's bytes: its header and every row, in order."""
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


async def last_sent_hash(sessionmaker: Sessionmaker, tenant_id: uuid.UUID) -> str | None:
    async with sessionmaker() as session:
        return await session.scalar(select(ElevoPushState.sent_hash).where(ElevoPushState.tenant_id == tenant_id))


async def record_unchanged(
    sessionmaker: Sessionmaker, tenant_id: uuid.UUID, cursor: int, run_id: uuid.UUID | None = None
) -> None:
    """The file would be the one Elevo's server took last: the cursor moves on, nothing is uploaded."""
    async with sessionmaker.begin() as session:
        await remember_push(session, tenant_id, cursor)
        if run_id is not None:
            run = await session.get(Run, run_id, with_for_update=True)
            assert run is not None
            run.counts = {**run.counts, "total": 0}
            note = "Nothing uploaded: the file would be the same as the last one Elevo's server took"
            await session.execute(insert(RunEvent), [event(run, "note", "people file", note)])


async def remember_push(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    cursor: int,
    digest: str | None = None,
    uploaded_at: datetime | None = None,
) -> None:
    """Move the tenant's push cursor forward (never back); with `digest`, the file just uploaded and when."""
    given = pg_insert(ElevoPushState).values(tenant_id=tenant_id, seen_seq=cursor, sent_hash=digest,
                                             uploaded_at=uploaded_at)  # fmt: skip
    columns = ElevoPushState.__table__.c
    values: dict[str, Any] = {"seen_seq": func.greatest(columns.seen_seq, given.excluded.seen_seq)}
    if digest is not None:
        values |= {"sent_hash": given.excluded.sent_hash, "uploaded_at": given.excluded.uploaded_at}
    await session.execute(given.on_conflict_do_update(index_elements=[columns.tenant_id], set_=values))


@dataclass(frozen=True, slots=True)
class DuePush:
    tenant_id: uuid.UUID
    defer_seconds: float


async def due_pushes(session: AsyncSession) -> list[DuePush]:
    """Elevo connectors with `push_on_change` whose tenant's copy changed beyond their cursor (an index lookup per
    connector), with no people sync queued or running; each with the wait until its interval has passed."""
    push = ElevoPushState
    seen = func.coalesce(push.seen_seq, 0)
    changed = or_(
        exists().where(DirectoryEmployee.tenant_id == Connector.tenant_id, DirectoryEmployee.change_seq > seen),
        exists().where(DirectoryDepartment.tenant_id == Connector.tenant_id, DirectoryDepartment.change_seq > seen),
    )
    busy = exists().where(
        Run.tenant_id == Connector.tenant_id,
        Run.connector == SOURCE,
        Run.operation == PEOPLE_SYNC,
        Run.status.in_(("queued", "running")),
    )
    rows = await session.execute(
        select(Connector.tenant_id, Connector.settings, push.uploaded_at, push.pushed_at)
        .join(Tenant, Tenant.id == Connector.tenant_id)
        .join(DirectoryState, DirectoryState.tenant_id == Connector.tenant_id)
        .outerjoin(push, push.tenant_id == Connector.tenant_id)
        .where(
            Connector.kind == SOURCE,
            Connector.enabled.is_(True),
            Connector.settings["push_on_change"].as_boolean().is_(True),
            Tenant.deleted_at.is_(None),
            DirectoryState.last_full_sync_at.is_not(None),
            changed,
            ~busy,
        )
    )
    now = utcnow()
    due = []
    for tenant_id, settings, uploaded_at, pushed_at in rows:
        interval = timedelta(minutes=settings.get("min_interval_minutes") or DEFAULT_INTERVAL_MINUTES)
        last = max((moment for moment in (uploaded_at, pushed_at) if moment is not None), default=None)
        wait = (last + interval - now).total_seconds() if last is not None else 0.0
        due.append(DuePush(tenant_id, max(wait, 0.0)))
    return due


async def push_changes(services: Services, tenant_id: uuid.UUID) -> uuid.UUID | None:
    """The job queued for a tenant whose copy changed: build the file from the copy and compare it with the last
    one Elevo's server took. The same: the cursor moves on, no run. Different: a people sync run (trigger
    `change`), queued; returns its id. Nothing when push_on_change is off, the interval has not passed, or a
    people sync is queued or running (the poller comes back once it is done)."""
    follower = await ready_follower(services, tenant_id, SOURCE)
    if follower is None:
        return None
    tenant, connector, settings = follower.tenant, follower.connector, follower.settings
    async with services.sessionmaker() as session:
        pushed = await session.get(ElevoPushState, tenant_id)
    if not settings.push_on_change:
        return None
    if pushed is not None:
        last = max((moment for moment in (pushed.uploaded_at, pushed.pushed_at) if moment is not None), default=None)
        if last is not None and utcnow() < last + timedelta(minutes=settings.min_interval_minutes):
            return None  # too early (an upload since this job was queued): the poller queues it again for later
    async with scratch_directory() as workdir:
        built = await build_file(services, tenant, settings, workdir)
    if pushed is not None and built.digest == pushed.sent_hash:
        await record_unchanged(services.sessionmaker, tenant_id, built.cursor)
        return None
    async with services.sessionmaker.begin() as session:
        # The connector's row is the lock: one people sync on change at a time, none beside a queued one.
        await session.execute(select(Connector.id).where(Connector.id == connector.id).with_for_update())
        busy = await session.scalar(
            select(Run.id).where(
                Run.tenant_id == tenant_id,
                Run.connector == SOURCE,
                Run.operation == PEOPLE_SYNC,
                Run.status.in_(("queued", "running")),
            )
        )
        if busy is not None:
            return None
        sent = await session.scalar(select(ElevoPushState.sent_hash).where(ElevoPushState.tenant_id == tenant_id))
        if sent == built.digest:  # another upload sent this very file since the job began
            await remember_push(session, tenant_id, built.cursor)
            return None
        run = new_run(tenant, SOURCE, PEOPLE_SYNC, CHANGE, {"change_seq": built.cursor})
        run.counts = {**run.counts, "total": 1}
        session.add(run)
        values = {"tenant_id": tenant_id, "pushed_at": utcnow()}
        given = pg_insert(ElevoPushState).values(**values)
        await session.execute(
            given.on_conflict_do_update(index_elements=["tenant_id"], set_={"pushed_at": values["pushed_at"]})
        )
        await session.flush()
        run_id = run.id
    await enqueue_run(services.redis, run_id)
    return run_id


async def set_counts(sessionmaker: Sessionmaker, run_id: uuid.UUID, counts: dict[str, int]) -> None:
    async with sessionmaker.begin() as session:
        run = await session.get(Run, run_id, with_for_update=True)
        assert run is not None
        run.counts = {**run.counts, **counts}


async def record_upload(
    sessionmaker: Sessionmaker,
    run_id: uuid.UUID,
    tenant: Tenant,
    people: PeopleFile,
    where: str,
    cursor: int,
    digest: str,
) -> None:
    """After the upload: who is in the file now and who it left out, the run's counts and its events, in one
    transaction (rows written a batch at a time, so memory does not grow with the directory more than its ids do)."""
    async with sessionmaker.begin() as session:
        # One sync at a time replaces a tenant's lists: the connector's row is the lock.
        await session.execute(
            select(Connector.id).where(Connector.tenant_id == tenant.id, Connector.kind == SOURCE).with_for_update()
        )
        mine = ElevoPersonSent.tenant_id == tenant.id
        in_file = {person.lucca_id for person in people.sent}
        before: set[int] = set()
        suspended: list[tuple[int, str, str]] = []
        last_file = select(ElevoPersonSent.lucca_user_id, ElevoPersonSent.email, ElevoPersonSent.name).where(mine)
        async for lucca_id, email, name in await session.stream(last_file.order_by(ElevoPersonSent.lucca_user_id)):
            before.add(lucca_id)
            if lucca_id not in in_file:
                suspended.append((lucca_id, email, name))
        left_out_before = await last_left_out(session, tenant)
        skipped = [person for person in people.left_out if person.lucca_id not in before]
        news = [person for person in skipped if is_news(person, left_out_before)]
        created = len(in_file - before)
        counts = {"created": created, "updated": len(in_file) - created, "skipped": len(skipped),
                  "suspended": len(suspended)}  # fmt: skip
        counts["total"] = sum(counts.values())
        run = await session.get(Run, run_id, with_for_update=True)
        assert run is not None
        run.counts = {**run.counts, **counts}
        run.state = {**run.state, UPLOAD: {**run.state.get(UPLOAD, {}), "step": RECORDED}}

        await remember_file(session, run_id, tenant, people)
        await remember_push(session, tenant.id, cursor, digest, utcnow())
        message = f"Uploaded {where}: {len(in_file)} people ({created} for the first time, {counts['updated']} again)"
        left_out = {person.lucca_id: person for person in people.left_out}
        unchanged = Counter(person.kind for person in skipped) - Counter(person.kind for person in news)
        events = [
            event(run, "note", where, message),
            *(skip_event(run, person) for person in news),
            *([unchanged_event(run, unchanged)] if unchanged else []),
            *(suspend_event(run, *row, left_out.get(row[0])) for row in suspended),
        ]
        for event_rows in batches(events):
            await session.execute(insert(RunEvent), event_rows)


async def last_left_out(session: AsyncSession, tenant: Tenant) -> dict[int, str]:
    """The current employees the last file left out, and the kind of reason for each."""
    query = select(ElevoPersonLeftOut.lucca_user_id, ElevoPersonLeftOut.reason)
    rows = await session.execute(query.where(ElevoPersonLeftOut.tenant_id == tenant.id))
    return {lucca_id: reason for lucca_id, reason in rows}


def is_news(person: LeftOut, left_out_before: dict[int, str]) -> bool:
    """Left out (and not in the last file) for a reason they were not left out for last time. A departed person
    who was not in the last file is never news: Elevo has nothing of theirs to change."""
    return person.kind != DEPARTED and left_out_before.get(person.lucca_id) != person.kind


async def remember_file(session: AsyncSession, run_id: uuid.UUID, tenant: Tenant, people: PeopleFile) -> None:
    """Replace the tenant's lists with this file's: who is in it, and which current employees it left out."""
    await session.execute(delete(ElevoPersonSent).where(ElevoPersonSent.tenant_id == tenant.id))
    await session.execute(delete(ElevoPersonLeftOut).where(ElevoPersonLeftOut.tenant_id == tenant.id))
    sent_at = utcnow()
    for sent in batches(people.sent):
        rows = [{"tenant_id": tenant.id, "lucca_user_id": person.lucca_id, "email": person.email,
                 "name": person.name, "run_id": run_id, "sent_at": sent_at} for person in sent]  # fmt: skip
        await session.execute(insert(ElevoPersonSent), rows)
    current = [person for person in people.left_out if person.kind != DEPARTED]
    for left_out in batches(current):
        rows = [{"tenant_id": tenant.id, "lucca_user_id": person.lucca_id, "reason": person.kind}
                for person in left_out]  # fmt: skip
        await session.execute(insert(ElevoPersonLeftOut), rows)


def batches(items: Sequence[Item], size: int = BATCH_ROWS) -> Iterator[Sequence[Item]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def skip_event(run: Run, person: LeftOut) -> dict[str, Any]:
    message = f"Left out of the file ({person.reason}; Lucca user {person.lucca_id}, {person.name})"
    return event(run, "skip", person.email or person.name, message)


def unchanged_event(run: Run, kinds: Counter[str]) -> dict[str, Any]:
    """One event for everyone left out whom nothing changed for (see `is_news`), counted by kind of reason."""
    again = ", ".join(f"{count:,} {kind}" for kind, count in sorted(kinds.items()) if kind != DEPARTED)
    parts = [f"{kinds[DEPARTED]:,} departed, none of them in the last file"] if kinds[DEPARTED] else []
    parts += [f"{again}, as in the last file"] if again else []
    total = kinds.total()
    subject = f"{total:,} {'person' if total == 1 else 'people'}"
    message = f"Also left out, not named one by one as nothing changed for them: {'; '.join(parts)}"
    return event(run, "skip", subject, f"{message} (the preview names each)")


def suspend_event(run: Run, lucca_id: int, email: str, name: str, now: LeftOut | None) -> dict[str, Any]:
    why = now.reason if now is not None else "no longer listed by Lucca"
    message = f"In the last file, not in this one ({why}; Lucca user {lucca_id}, {name}): Elevo suspends them"
    return event(run, "suspend", email, message)


def event(run: Run, action: Action, subject: str, message: str) -> dict[str, Any]:
    """An event's row, written with the others in the upload's transaction (RunLog writes one per transaction)."""
    cut = subject if len(subject) <= SUBJECT_CHARS else subject[: SUBJECT_CHARS - 1] + "…"
    return {"run_id": run.id, "tenant_id": run.tenant_id, "action": action, "subject": cut,
            "message": sentence(message), "level": "info", "at": utcnow()}  # fmt: skip
