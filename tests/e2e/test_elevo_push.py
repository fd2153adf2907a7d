"""Elevo's push_on_change end to end: changes in the sandbox's Lucca reach the copy (a real poll), the
poller's pass (`directory.poll_due`, as its cron runs it) queues one job per tenant, and real arq workers build the
file from the copy, compare it with the last one and upload it to the real SFTP server only when it changed, at most
once per `min_interval_minutes`. Then faults: two worker processes following at once, a sync asked for while a file
on change uploads, a worker killed mid upload."""

import asyncio
import signal
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from app.directory.polling import poll_tenant
from app.models import Run, Tenant
from app.models.elevo import ElevoPushState
from app.sandbox.sftp import SftpSandbox
from app.services.context import Services
from app.services.elevo import push_changes
from app.workers.freshness import directory_poll_due
from tests.e2e.conftest import drain_queue, runs_of
from tests.e2e.directory_helpers import running_services
from tests.e2e.test_elevo_sync import DIRECTORY, FILE_NAME, SFTP_PASSWORD, elevo_tenant, sync
from tests.e2e.test_recovery import wait_for_run, worker_process
from tests.factories import TenantHandle
from tests.sandbox_server import LuccaAccount, SandboxServer

pytestmark = pytest.mark.usefixtures("clean_state")

PUSH: dict[str, Any] = {"push_on_change": True, "min_interval_minutes": 1, "extra_columns": {}}


@pytest.fixture
async def services() -> AsyncIterator[Services]:
    async with running_services() as started:
        yield started


@pytest.fixture
async def sftp(tmp_path: Path) -> AsyncIterator[SftpSandbox]:
    server = SftpSandbox(tmp_path / "elevo", password=SFTP_PASSWORD)
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
def lucca(sandbox: SandboxServer) -> LuccaAccount:
    return sandbox.new_lucca_account(users=DIRECTORY)


async def tenant_id(services: Services, slug: str = "acme") -> uuid.UUID:
    async with services.sessionmaker() as session:
        found = await session.scalar(select(Tenant.id).where(Tenant.slug == slug, Tenant.deleted_at.is_(None)))
    assert found is not None
    return found


async def change(client: httpx.AsyncClient, lucca: LuccaAccount, services: Services, **fields: Any) -> None:
    """Change Jean (Lucca user 102) in the sandbox's Lucca; a poll (the one the poller's job makes) brings it into
    the copy."""
    key = {"Authorization": f"lucca application={lucca.api_key}"}
    answer = await client.put(f"{lucca.base_url}/api/v3/users/102", json=fields, headers=key)
    assert answer.status_code == 200, answer.text
    await poll_tenant(services, await tenant_id(services), 30)


async def interval_passed(services: Services) -> None:
    """Move the last upload (and the last run queued on change) back by the interval, as if it had passed."""
    interval = timedelta(minutes=PUSH["min_interval_minutes"])
    async with services.sessionmaker.begin() as session:
        await session.execute(
            update(ElevoPushState)
            .where(ElevoPushState.tenant_id == await tenant_id(services))
            .values(uploaded_at=ElevoPushState.uploaded_at - interval, pushed_at=ElevoPushState.pushed_at - interval)
        )


async def follow(services: Services) -> None:
    """The poller's pass (the worker's cron every 2 s), then real workers until every job, deferred ones included,
    is done."""
    await directory_poll_due({"services": services})
    await drain_queue()


async def people_syncs(client: httpx.AsyncClient, tenant: TenantHandle) -> list[dict[str, Any]]:
    return await runs_of(client, tenant, "people_sync")


def take_files(sftp: SftpSandbox) -> list[bytes]:
    """The files Elevo's server holds, then gone (Elevo takes them in)."""
    files = sftp.files()
    for name in files:
        (sftp.root / name).unlink()
    return list(files.values())


async def test_a_file_on_change_once_per_interval_and_none_when_the_file_is_the_same(
    client: httpx.AsyncClient, lucca: LuccaAccount, sftp: SftpSandbox, services: Services
) -> None:
    tenant = await elevo_tenant(client, lucca, sftp, **PUSH)
    assert (await sync(client, tenant))["status"] == "succeeded"  # the first file, asked for
    uploaded_at = time.monotonic()
    [first] = take_files(sftp)

    # A change the file does not show (a personal e-mail, not one of its columns): no file, no run.
    await change(client, lucca, services, personalEmail="jean@perso.fr")
    await follow(services)  # the check waits for the interval after the first file
    assert time.monotonic() - uploaded_at >= 55
    assert take_files(sftp) == []
    assert [run["trigger"] for run in await people_syncs(client, tenant)] == ["api"]

    # One change: one file with the new row, at once (the interval has passed).
    await change(client, lucca, services, jobTitle="Staff engineer")
    started = time.monotonic()
    await follow(services)
    assert time.monotonic() - started < 30
    [second] = take_files(sftp)
    assert b'"Developer, backend"' in first and b"Staff engineer" not in first
    assert b"jean.dupont@acme.fr,claire.martin@acme.fr,Staff engineer,Engineering" in second
    latest = (await people_syncs(client, tenant))[0]
    assert (latest["trigger"], latest["status"], latest["counts"]["updated"]) == ("change", "succeeded", 4)
    second_at = time.monotonic()

    # Ten changes within the interval: one file, with the last state, a minute after the previous one.
    for index in range(10):
        await change(client, lucca, services, jobTitle=f"Title {index}")
        await directory_poll_due({"services": services})
    await follow(services)
    assert time.monotonic() - second_at >= 55
    [third] = take_files(sftp)
    assert b",Title 9,Engineering" in third and b"Title 8" not in third
    assert [run["trigger"] for run in await people_syncs(client, tenant)] == ["change", "change", "api"]

    # Nothing new in the copy: nothing queued, nothing uploaded.
    await follow(services)
    assert take_files(sftp) == []
    assert len(await people_syncs(client, tenant)) == 3


async def test_no_file_on_change_when_push_on_change_is_off(
    client: httpx.AsyncClient, lucca: LuccaAccount, sftp: SftpSandbox, services: Services
) -> None:
    tenant = await elevo_tenant(client, lucca, sftp, **{**PUSH, "push_on_change": False})
    assert (await sync(client, tenant))["status"] == "succeeded"
    take_files(sftp)
    await change(client, lucca, services, jobTitle="Staff engineer")
    started = time.monotonic()
    await follow(services)
    assert time.monotonic() - started < 30  # nothing was queued: no wait for an interval
    assert take_files(sftp) == []
    assert [run["trigger"] for run in await people_syncs(client, tenant)] == ["api"]


async def eventually(check: Callable[[], Awaitable[bool]], what: str, seconds: float = 60) -> None:
    """Wait until `check` holds (what workers in other processes do is seen from outside), failing after `seconds`."""
    deadline = time.monotonic() + seconds
    while not await check():
        assert time.monotonic() < deadline, f"{what}: not within {seconds:g} s"
        await asyncio.sleep(0.1)


def only_file(sftp: SftpSandbox) -> bytes:
    """The one file on Elevo's server, under its final name (no temporary file left beside it)."""
    files = sftp.files()
    assert len(files) == 1 and FILE_NAME.fullmatch(next(iter(files))), list(files)
    return next(iter(files.values()))


async def test_two_workers_following_the_same_changes_upload_one_file_per_state(
    client: httpx.AsyncClient, lucca: LuccaAccount, sftp: SftpSandbox, services: Services
) -> None:
    tenant = await elevo_tenant(client, lucca, sftp, **PUSH)
    assert (await sync(client, tenant))["status"] == "succeeded"
    files = take_files(sftp)

    async def done(count: int) -> bool:
        runs = [run for run in await people_syncs(client, tenant) if run["trigger"] == "change"]
        return len(runs) >= count and all(run["finished_at"] for run in runs)

    with worker_process(), worker_process():
        for state in range(3):
            await interval_passed(services)
            await change(client, lucca, services, jobTitle=f"State {state}")
            await directory_poll_due({"services": services})  # a third pass, beside the workers' own crons
            await eventually(partial(done, state + 1), f"the file of state {state}")
            [file] = take_files(sftp)
            assert f",State {state},Engineering".encode() in file
            files.append(file)
    # Each state is in one file, and no file was sent twice.
    assert len(sftp.renames) == len(set(files)) == 4
    runs = await people_syncs(client, tenant)
    assert [(run["trigger"], run["status"]) for run in runs] == [("change", "succeeded")] * 3 + [("api", "succeeded")]
    # The last state is the one recorded as sent: following again finds nothing to send.
    await follow(services)
    assert take_files(sftp) == [] and len(await people_syncs(client, tenant)) == 4


async def lock_waits(services: Services, run_id: str) -> int:
    async with services.sessionmaker() as session:
        waits = await session.scalar(select(Run.lock_waits).where(Run.id == uuid.UUID(run_id)))
    return waits or 0


async def test_a_sync_asked_for_while_a_file_on_change_uploads_waits_and_elevo_ends_on_the_newest_state(
    client: httpx.AsyncClient, lucca: LuccaAccount, sftp: SftpSandbox, services: Services
) -> None:
    tenant = await elevo_tenant(client, lucca, sftp, **PUSH)
    assert (await sync(client, tenant))["status"] == "succeeded"
    take_files(sftp)
    sftp.renames.clear()
    await interval_passed(services)
    await change(client, lucca, services, jobTitle="First change")
    on_change = await push_changes(services, await tenant_id(services))  # the poller's job: a file on change
    assert on_change is not None
    hold = sftp.hold("write")
    workers = asyncio.gather(drain_queue(), drain_queue())
    await asyncio.wait_for(hold.reached.wait(), 30)  # the file on change is being written
    # Meanwhile Lucca changes again and someone asks for a sync: it must not overtake the file on change.
    await change(client, lucca, services, jobTitle="Second change")
    answer = await client.post(f"/api/v1/tenants/{tenant.slug}/elevo/sync", headers=tenant.auth)
    asked = answer.json()["run_id"]

    async def overtaking_or_waiting() -> bool:
        return bool(sftp.renames) or await lock_waits(services, asked) > 0

    await eventually(overtaking_or_waiting, "the asked-for sync uploading or waiting its turn")
    hold.release()
    await workers
    # The file on change went first, then the asked-for one: Elevo's newest file holds the newest state.
    runs = {run["id"]: run for run in await people_syncs(client, tenant)}
    assert (runs[str(on_change)]["status"], runs[asked]["status"]) == ("succeeded", "succeeded")
    assert len(sftp.renames) == 2
    newest = sftp.files()[max(sftp.files())]
    assert b",Second change,Engineering" in newest
    # The newest state is recorded as sent: following finds nothing more to send.
    take_files(sftp)
    await follow(services)
    assert take_files(sftp) == [] and len(runs) == len(await people_syncs(client, tenant)) == 3


@pytest.mark.parametrize("step", ["write", "rename"])
async def test_a_worker_killed_mid_upload_then_another_sends_the_file_once(
    client: httpx.AsyncClient, lucca: LuccaAccount, sftp: SftpSandbox, services: Services, step: str
) -> None:
    tenant = await elevo_tenant(client, lucca, sftp, **PUSH)
    assert (await sync(client, tenant))["status"] == "succeeded"
    take_files(sftp)
    sftp.renames.clear()
    await interval_passed(services)
    await change(client, lucca, services, jobTitle="Staff engineer")
    # The worker's poller queues the file on change; its upload is held as it writes, or once it is renamed.
    hold = sftp.hold("write" if step == "write" else "rename")
    with worker_process() as first_worker:
        await asyncio.wait_for(hold.reached.wait(), 60)
        first_worker.send_signal(signal.SIGKILL)
    hold.release()
    [run] = [run for run in await people_syncs(client, tenant) if run["trigger"] == "change"]
    with worker_process():
        # arq takes the job up again once its in-progress mark expires (its longest timeout + 10 s).
        run = await wait_for_run(client, tenant, run["id"], seconds=120)
    assert (run["status"], run["counts"]["updated"]) == ("succeeded", 4), run
    # One file, uploaded once, and nothing of the killed attempt left.
    assert b",Staff engineer,Engineering" in only_file(sftp)
    assert len(sftp.renames) == 1
    take_files(sftp)
    await follow(services)
    assert take_files(sftp) == [] and len(await people_syncs(client, tenant)) == 2
