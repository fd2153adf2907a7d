"""Lucca → Elevo: the people file over SFTP (contract section 10).

A sync signs in to Elevo's SFTP server first (a wrong host key or password fails the run before anything is read),
builds the file while paging through the directory's copy (`people_file`; no Lucca call: a sync asked for before
the copy's first full sync completed waits for it, as uploading a file without everyone would suspend them),
uploads it under a temporary name and renames it, and only then, in one transaction, remembers who was in it and
writes the run's counts and events. A run whose upload
failed changes nothing, so the next one compares with the last file Elevo really took.

Everyone considered (listed by Lucca now, or in the last file) has one outcome: `created` (in the file for the first
time), `updated` (in it again), `skipped` (left out, with the reason) or `suspended` (in the last file but not in
this one, so Elevo suspends them). Until the file is uploaded, the run counts one item: the file.

Events say what changed, not the whole directory every night: each suspended person, and each person newly left out
(a current employee the last file did not leave out for the same reason) have their own; the others left out
(departed people who were not in the last file, and those left out again for the same reason) are counted in one.
"""

import asyncio
import shutil
import tempfile
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.clients.sftp import SftpAccount, SftpClient
from app.crypto import SecretBox
from app.db import Sessionmaker
from app.directory import reads
from app.directory.readiness import wait_for_directory
from app.models import Connector, Run, RunEvent, Tenant
from app.models.base import utcnow
from app.models.elevo import ElevoPersonLeftOut, ElevoPersonSent
from app.schemas.elevo import ElevoPreview, ElevoSettings, LeftOutPerson
from app.services.connectors import connector_settings, enabled_connector
from app.services.context import Services
from app.services.people_file import DEPARTED, LeftOut, PeopleFile, read_people
from app.services.run_log import Action, RunLog, sentence
from app.services.runs import new_run

SOURCE = "elevo"
PEOPLE_SYNC = "people_sync"
FILE_NAME = "users-%Y%m%d-%H%M%S.csv"
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


async def process_people_sync(services: Services, run: Run, tenant: Tenant, connector: Connector, log: RunLog) -> None:
    """The queued job's work: check the SFTP account, build the file from Lucca, upload it, then record it."""
    settings = elevo_settings(services.box, connector)
    if not run.counts.get("total"):
        await set_counts(services.sessionmaker, run.id, {"total": 1})  # a scheduled run: the file is its item
    sftp = sftp_client(services, settings)
    await sftp.check()
    async with scratch_directory() as workdir:
        await wait_for_directory(services, tenant)
        async with services.sessionmaker() as session:
            people = await read_people(session, tenant.id, settings, reads.today_of(tenant), workdir)
        path = workdir / "users.csv"
        await asyncio.to_thread(people.write_csv, path)
        remote = await sftp.upload(path, lambda: local_now(tenant).strftime(FILE_NAME))
    await record_upload(services.sessionmaker, run.id, tenant, people, f"{remote} on {settings.sftp.host}")


async def set_counts(sessionmaker: Sessionmaker, run_id: uuid.UUID, counts: dict[str, int]) -> None:
    async with sessionmaker.begin() as session:
        run = await session.get(Run, run_id, with_for_update=True)
        assert run is not None
        run.counts = {**run.counts, **counts}


async def record_upload(
    sessionmaker: Sessionmaker, run_id: uuid.UUID, tenant: Tenant, people: PeopleFile, where: str
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

        await remember_file(session, run_id, tenant, people)
        message = f"Uploaded {where}: {len(in_file)} people ({created} for the first time, {counts['updated']} again)"
        left_out = {person.lucca_id: person for person in people.left_out}
        unchanged = Counter(person.kind for person in skipped) - Counter(person.kind for person in news)
        events = [
            event(run_id, "note", where, message),
            *(skip_event(run_id, person) for person in news),
            *([unchanged_event(run_id, unchanged)] if unchanged else []),
            *(suspend_event(run_id, *row, left_out.get(row[0])) for row in suspended),
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


def skip_event(run_id: uuid.UUID, person: LeftOut) -> dict[str, Any]:
    message = f"Left out of the file ({person.reason}; Lucca user {person.lucca_id}, {person.name})"
    return event(run_id, "skip", person.email or person.name, message)


def unchanged_event(run_id: uuid.UUID, kinds: Counter[str]) -> dict[str, Any]:
    """One event for everyone left out whom nothing changed for (see `is_news`), counted by kind of reason."""
    again = ", ".join(f"{count:,} {kind}" for kind, count in sorted(kinds.items()) if kind != DEPARTED)
    parts = [f"{kinds[DEPARTED]:,} departed, none of them in the last file"] if kinds[DEPARTED] else []
    parts += [f"{again}, as in the last file"] if again else []
    total = kinds.total()
    subject = f"{total:,} {'person' if total == 1 else 'people'}"
    message = f"Also left out, not named one by one as nothing changed for them: {'; '.join(parts)}"
    return event(run_id, "skip", subject, f"{message} (the preview names each)")


def suspend_event(run_id: uuid.UUID, lucca_id: int, email: str, name: str, now: LeftOut | None) -> dict[str, Any]:
    why = now.reason if now is not None else "no longer listed by Lucca"
    message = f"In the last file, not in this one ({why}; Lucca user {lucca_id}, {name}): Elevo suspends them"
    return event(run_id, "suspend", email, message)


def event(run_id: uuid.UUID, action: Action, subject: str, message: str) -> dict[str, Any]:
    """An event's row, written with the others in the upload's transaction (RunLog writes one per transaction)."""
    cut = subject if len(subject) <= SUBJECT_CHARS else subject[: SUBJECT_CHARS - 1] + "…"
    return {"run_id": run_id, "action": action, "subject": cut, "message": sentence(message), "level": "info",
            "at": utcnow()}  # fmt: skip
