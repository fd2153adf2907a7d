"""Lucca → Elevo: the people file over SFTP (contract section 10).

A sync signs in to Elevo's SFTP server first (a wrong host key or password fails the run before Lucca is read),
builds the file while paging through Lucca (`people_file`), uploads it under a temporary name and renames it, and
only then, in one transaction, remembers who was in it and writes the run's counts and events. A run whose upload
failed changes nothing, so the next one compares with the last file Elevo really took.

Everyone considered (listed by Lucca now, or in the last file) has one outcome: `created` (in the file for the first
time), `updated` (in it again), `skipped` (left out, with the reason) or `suspended` (in the last file but not in
this one, so Elevo suspends them). Until the file is uploaded, the run counts one item: the file.
"""

import asyncio
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.clients.lucca import LuccaClient
from app.clients.sftp import SftpAccount, SftpClient
from app.crypto import SecretBox
from app.db import Sessionmaker
from app.models import Connector, Run, RunEvent, Tenant
from app.models.base import utcnow
from app.models.elevo import ElevoPersonSent
from app.schemas.elevo import ElevoPreview, ElevoSettings, LeftOutPerson
from app.services.connectors import connector_settings, enabled_connector
from app.services.context import Services
from app.services.people_file import LeftOut, PeopleFile, read_people
from app.services.run_log import Action, RunLog, sentence
from app.services.runs import new_run

SOURCE = "elevo"
PEOPLE_SYNC = "people_sync"
FILE_NAME = "users-%Y%m%d-%H%M%S.csv"
SUBJECT_CHARS = 300  # the events' subject column


def elevo_settings(box: SecretBox, connector: Connector) -> ElevoSettings:
    settings: ElevoSettings = connector_settings(box, connector)
    return settings


def local_now(tenant: Tenant) -> datetime:
    return datetime.now(ZoneInfo(tenant.timezone))


def today_of(tenant: Tenant) -> date:
    return local_now(tenant).date()


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


async def preview_people(lucca: LuccaClient, settings: ElevoSettings, tenant: Tenant) -> ElevoPreview:
    """The rows a sync would upload now, and who it would leave out; reads Lucca, uploads nothing."""
    async with scratch_directory() as workdir:
        people = await read_people(lucca, settings, today_of(tenant), workdir)
        rows = await asyncio.to_thread(people.rows)
    left_out = [
        LeftOutPerson(lucca_id=p.lucca_id, name=p.name, email=p.email, reason=p.reason) for p in people.left_out
    ]
    return ElevoPreview(rows=rows, left_out=left_out)


async def process_people_sync(services: Services, run: Run, tenant: Tenant, connector: Connector, log: RunLog) -> None:
    """The queued job's work: check the SFTP account, build the file from Lucca, upload it, then record it."""
    settings = elevo_settings(services.box, connector)
    if not run.counts.get("total"):
        await set_counts(services.sessionmaker, run.id, {"total": 1})  # a scheduled run: the file is its item
    sftp = sftp_client(services, settings)
    await sftp.check()
    async with scratch_directory() as workdir:
        people = await read_people(services.lucca(tenant), settings, today_of(tenant), workdir)
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
    """After the upload: who is in the file now, the run's counts and its events, in one transaction."""
    async with sessionmaker.begin() as session:
        # One sync at a time replaces a tenant's list: the connector's row is the lock.
        await session.execute(
            select(Connector.id).where(Connector.tenant_id == tenant.id, Connector.kind == SOURCE).with_for_update()
        )
        before = {
            row.lucca_user_id: row
            for row in await session.scalars(select(ElevoPersonSent).where(ElevoPersonSent.tenant_id == tenant.id))
        }
        in_file = {person.lucca_id for person in people.sent}
        left_out = {person.lucca_id: person for person in people.left_out}
        skipped = [person for person in people.left_out if person.lucca_id not in before]
        suspended = [row for lucca_id, row in before.items() if lucca_id not in in_file]
        created = len(in_file - before.keys())
        updated = len(in_file) - created
        counts = {"created": created, "updated": updated, "skipped": len(skipped), "suspended": len(suspended)}
        counts["total"] = sum(counts.values())

        run = await session.get(Run, run_id, with_for_update=True)
        assert run is not None
        run.counts = {**run.counts, **counts}
        await session.execute(delete(ElevoPersonSent).where(ElevoPersonSent.tenant_id == tenant.id))
        if people.sent:
            sent_at = utcnow()
            rows = [
                {"tenant_id": tenant.id, "lucca_user_id": person.lucca_id, "email": person.email, "name": person.name,
                 "run_id": run.id, "sent_at": sent_at}
                for person in people.sent
            ]  # fmt: skip
            await session.execute(insert(ElevoPersonSent), rows)
        message = f"Uploaded {where}: {len(in_file)} people ({created} for the first time, {updated} again)"
        events = [event(run.id, "note", where, message)]
        events += [skip_event(run.id, person) for person in skipped]
        events += [suspend_event(run.id, row, left_out.get(row.lucca_user_id)) for row in suspended]
        session.add_all(events)


def skip_event(run_id: uuid.UUID, person: LeftOut) -> RunEvent:
    message = f"Left out of the file ({person.reason}; Lucca user {person.lucca_id}, {person.name})"
    return event(run_id, "skip", person.email or person.name, message)


def suspend_event(run_id: uuid.UUID, sent: ElevoPersonSent, now: LeftOut | None) -> RunEvent:
    why = now.reason if now is not None else "no longer listed by Lucca"
    message = (
        f"In the last file, not in this one ({why}; Lucca user {sent.lucca_user_id}, {sent.name}): Elevo suspends them"
    )
    return event(run_id, "suspend", sent.email, message)


def event(run_id: uuid.UUID, action: Action, subject: str, message: str) -> RunEvent:
    """An event written with the others in the upload's transaction (RunLog writes one per transaction)."""
    cut = subject if len(subject) <= SUBJECT_CHARS else subject[: SUBJECT_CHARS - 1] + "…"
    return RunEvent(run_id=run_id, action=action, subject=cut, message=sentence(message), level="info", at=utcnow())
