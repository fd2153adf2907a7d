"""Lucca → Elevo (contract 10) end to end: the API over TCP, real arq workers, the Lucca sandbox over HTTP and a
real asyncssh SFTP server (the sandbox's) in the test's loop. The file's bytes are checked as Elevo receives them."""

import asyncio
import logging
import os
import re
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import asyncssh
import httpx
import pytest
from arq import create_pool
from arq.connections import RedisSettings

from app.crypto import SecretBox
from app.db import create_engine, create_sessionmaker
from app.queue import enqueue_run
from app.sandbox.demo import demo_seed_payload, demo_user
from app.sandbox.sftp import SftpSandbox
from app.services.schedules import claim_due_runs, hour_offset, next_due
from tests.directory_copy import full_sync
from tests.e2e.conftest import drain_queue, events_of, run_of
from tests.e2e.test_schedules import worker_with_the_tick
from tests.factories import TenantHandle, create_tenant
from tests.live_server import LiveServer
from tests.sandbox_server import LuccaAccount, SandboxServer

pytestmark = pytest.mark.usefixtures("clean_state")

SFTP_PASSWORD = "sftp-Pa55-word-never-shown"
FILE_NAME = re.compile(r"users-\d{8}-\d{6}\.csv")
EXTRA = {"shirt": "e_shirt", "birth_date": "e_birth", "level": "e_level", "remote": "e_remote", "note": "e_note",
         "personal_email": "personalEmail"}  # fmt: skip
# A manager chain (Jean → Claire; Zoë → Ana → Paul, who has left), a skip-flagged person, a departed one, one
# without an e-mail, extra columns of each type, and values that need quoting.
DIRECTORY = [
    demo_user(100, "Claire", "Martin", 10, dtContractStart="2019-03-01", jobTitle="CTO", employeeNumber="0001",
              personalEmail="claire@perso.fr",
              extendedData={"e_shirt": {"id": 1, "value": {"id": 3, "name": "L"}},
                            "e_birth": {"id": 2, "value": "1985-04-12T00:00:00"}, "e_level": {"id": 3, "value": 3},
                            "e_remote": {"id": 4, "value": True},
                            "e_note": {"id": 5, "value": 'Says "hi", then\nleaves'},
                            "e_skip_elevo_sync": {"id": 6, "value": False}}),
    demo_user(101, "Paul", "Durand", 11, dtContractStart="2018-01-15", dtContractEnd="2024-06-30"),
    demo_user(102, "Jean", "Dupont", 10, dtContractStart="2021-09-01", jobTitle="Developer, backend", managerId=100,
              employeeNumber="0002"),
    demo_user(103, "Zoë", "Müller", 11, dtContractStart="2027-01-04", managerId=104),  # arrives next month
    demo_user(104, "Ana", "Gómez", 11, dtContractStart="2020-05-01", managerId=101, jobTitle="Head of Sales"),
    demo_user(105, "Sam", "Skip", 12, extendedData={"e_skip_elevo_sync": {"id": 7, "value": True}}),
    {**demo_user(106, "Nora", "Nomail", 12), "mail": None},
]  # fmt: skip
EXPECTED_FILE = (
    "registration_number,first_name,last_name,email,manager_email,job_title,team_name,arrival_date,shirt,"
    "birth_date,level,remote,note,personal_email\r\n"
    '0001,Claire,Martin,claire.martin@acme.fr,,CTO,Engineering,2019-03-01,L,1985-04-12,3,true,"Says ""hi"", then\n'
    'leaves",claire@perso.fr\r\n'
    '0002,Jean,Dupont,jean.dupont@acme.fr,claire.martin@acme.fr,"Developer, backend",Engineering,2021-09-01,,,,,,\r\n'
    ",Zoë,Müller,zoë.müller@acme.fr,ana.gómez@acme.fr,,Sales,2027-01-04,,,,,,\r\n"
    ",Ana,Gómez,ana.gómez@acme.fr,paul.durand@acme.fr,Head of Sales,Sales,2020-05-01,,,,,,\r\n"
).encode()
LEFT_OUT = [
    {"lucca_id": 101, "name": "Paul Durand", "email": "paul.durand@acme.fr",
     "reason": "departed: their contract ended on 2024-06-30"},
    {"lucca_id": 105, "name": "Sam Skip", "email": "sam.skip@acme.fr",
     "reason": "skip flag: e_skip_elevo_sync is checked in Lucca"},
    {"lucca_id": 106, "name": "Nora Nomail", "email": None,
     "reason": "no email: Lucca has no professional e-mail (mail) for them"},
]  # fmt: skip


@pytest.fixture
def lucca(sandbox: SandboxServer) -> LuccaAccount:
    return sandbox.new_lucca_account(users=DIRECTORY)


@pytest.fixture
async def sftp(tmp_path: Path) -> AsyncIterator[SftpSandbox]:
    """Elevo's SFTP server: a real asyncssh server, in this test's event loop (the workers' too)."""
    server = SftpSandbox(tmp_path / "elevo", password=SFTP_PASSWORD)
    await server.start()
    yield server
    await server.stop()


def elevo_settings(sftp: SftpSandbox, sftp_changes: dict[str, Any] | None = None, **changes: Any) -> dict[str, Any]:
    settings = {"sftp": {**sftp.connection_settings(), **(sftp_changes or {})}, "extra_columns": EXTRA}
    return {**settings, "schedule_enabled": False, **changes}


async def elevo_tenant(
    client: httpx.AsyncClient,
    lucca: LuccaAccount,
    sftp: SftpSandbox,
    slug: str = "acme",
    sftp_changes: dict[str, Any] | None = None,
    **changes: Any,
) -> TenantHandle:
    tenant = await create_tenant(client, slug, base_url=lucca.base_url, api_key=lucca.api_key)
    body = {"enabled": True, "settings": elevo_settings(sftp, sftp_changes, **changes)}
    answer = await client.put(f"/api/v1/tenants/{slug}/connectors/elevo", json=body, headers=tenant.auth)
    assert answer.status_code == 200, answer.text
    await full_sync(client, tenant)
    return tenant


async def sync(client: httpx.AsyncClient, tenant: TenantHandle) -> dict[str, Any]:
    answer = await client.post(f"/api/v1/tenants/{tenant.slug}/elevo/sync", headers=tenant.auth)
    assert answer.status_code == 202, answer.text
    await drain_queue()
    return await run_of(client, tenant, answer.json()["run_id"])


def uploaded(sftp: SftpSandbox, remote_dir: str = "/") -> bytes:
    """The one file Elevo can read, after checking that nothing else (a temporary file) is there."""
    files = sftp.files(remote_dir)
    assert len(files) == 1 and FILE_NAME.fullmatch(next(iter(files))), list(files)
    return next(iter(files.values()))


def counts(run: dict[str, Any]) -> dict[str, int]:
    return {key: value for key, value in run["counts"].items() if value}


async def test_the_exact_file_the_preview_and_who_was_left_out(
    client: httpx.AsyncClient, lucca: LuccaAccount, sftp: SftpSandbox
) -> None:
    tenant = await elevo_tenant(client, lucca, sftp)
    preview = await client.get("/api/v1/tenants/acme/elevo/preview", headers=tenant.auth)
    assert preview.status_code == 200, preview.text
    assert sftp.files() == {}  # a preview uploads nothing
    assert preview.json()["left_out"] == LEFT_OUT
    assert [row["email"] for row in preview.json()["rows"]] == [
        "claire.martin@acme.fr", "jean.dupont@acme.fr", "zoë.müller@acme.fr", "ana.gómez@acme.fr",
    ]  # fmt: skip
    assert preview.json()["rows"][0]["note"] == 'Says "hi", then\nleaves'

    lucca.server.control.delete(f"/lucca/accounts/{lucca.name}/calls").raise_for_status()
    run = await sync(client, tenant)
    assert run["status"] == "succeeded" and run["trigger"] == "api", run
    assert counts(run) == {"total": 7, "created": 4, "skipped": 3}
    assert uploaded(sftp) == EXPECTED_FILE
    [rename] = sftp.renames
    assert rename.size == len(EXPECTED_FILE) and rename.source.endswith(".part")
    events = await events_of(client, tenant, run["id"])
    # The departed are counted, not named (neither of them was in a file): Elevo has nothing of theirs to change.
    assert [(event["action"], event["subject"]) for event in events] == [
        ("note", f"{rename.target} on 127.0.0.1"), ("skip", "sam.skip@acme.fr"), ("skip", "Nora Nomail"),
        ("skip", "1 person"),
    ]  # fmt: skip
    assert "skip flag: e_skip_elevo_sync is checked in Lucca" in events[1]["message"]
    assert "1 departed, none of them in the last file" in events[3]["message"]
    assert "4 people (4 for the first time, 0 again)" in events[0]["message"]
    # Built from the directory's copy: no Lucca call.
    assert lucca.calls()["items"] == []


async def test_a_second_sync_after_someone_left_suspends_them(
    client: httpx.AsyncClient, lucca: LuccaAccount, sftp: SftpSandbox
) -> None:
    tenant = await elevo_tenant(client, lucca, sftp)
    assert (await sync(client, tenant))["status"] == "succeeded"
    for name in sftp.files():
        (sftp.root / name).unlink()  # Elevo takes the file in
    # Jean leaves (HR ends his contract in Lucca).
    lucca_key = {"Authorization": f"lucca application={lucca.api_key}"}
    ended = await client.put(
        f"{lucca.base_url}/api/v3/users/102", json={"dtContractEnd": "2025-01-31"}, headers=lucca_key
    )
    assert ended.status_code == 200, ended.text
    await full_sync(client, tenant)  # the change reaches the copy

    run = await sync(client, tenant)
    assert counts(run) == {"total": 7, "updated": 3, "skipped": 3, "suspended": 1}
    content = uploaded(sftp).decode()
    assert "jean.dupont" not in content and content.count("\r\n") == 4
    [suspended] = [event for event in await events_of(client, tenant, run["id"]) if event["action"] == "suspend"]
    assert suspended["subject"] == "jean.dupont@acme.fr"
    assert (
        "departed: their contract ended on 2025-01-31" in suspended["message"] and "Jean Dupont" in suspended["message"]
    )
    # The runs can be found by who was suspended.
    found = await client.get("/api/v1/tenants/acme/runs", params={"subject": "jean.dupont"}, headers=tenant.auth)
    assert [item["id"] for item in found.json()["items"]] == [run["id"]]


FORMER = [demo_user(200 + index, "Former", f"Employee{index}", 11, dtContractEnd="2023-12-31") for index in range(40)]


def reseed(lucca: LuccaAccount, users: list[dict[str, Any]]) -> None:
    """The account's directory, replaced (its key stays)."""
    seed = {**demo_seed_payload(), "users": users}
    lucca.server.control.put(f"/lucca/accounts/{lucca.name}", json=seed).raise_for_status()


async def sync_events(client: httpx.AsyncClient, tenant: TenantHandle) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    run = await sync(client, tenant)
    assert run["status"] == "succeeded", run
    return run, await events_of(client, tenant, run["id"])


async def test_each_night_names_only_who_is_newly_left_out_and_counts_the_others(
    client: httpx.AsyncClient, sandbox: SandboxServer, sftp: SftpSandbox
) -> None:
    lucca = sandbox.new_lucca_account(users=[*DIRECTORY, *FORMER])
    tenant = await elevo_tenant(client, lucca, sftp)
    first, events = await sync_events(client, tenant)
    assert counts(first) == {"total": 47, "created": 4, "skipped": 43}
    # The first night: the two current employees left out are named, the 41 departed counted in one event.
    assert [(event["action"], event["subject"]) for event in events[1:]] == [
        ("skip", "sam.skip@acme.fr"), ("skip", "Nora Nomail"), ("skip", "41 people"),
    ]  # fmt: skip
    assert "41 departed, none of them in the last file" in events[3]["message"]

    # Jean leaves, Nora's skip flag gets checked, Léa arrives without an e-mail; the former employees stay as they were.
    jean = {**DIRECTORY[2], "dtContractEnd": "2025-01-31"}
    nora = {**DIRECTORY[6], "extendedData": {"e_skip_elevo_sync": {"id": 8, "value": True}}}
    lea = {**demo_user(107, "Léa", "Newcomer", 12), "mail": None}
    reseed(lucca, [*DIRECTORY[:2], jean, *DIRECTORY[3:6], nora, lea, *FORMER])
    await full_sync(client, tenant)
    second, events = await sync_events(client, tenant)
    assert counts(second) == {"total": 48, "updated": 3, "skipped": 44, "suspended": 1}
    assert [(event["action"], event["subject"]) for event in events[1:]] == [
        ("skip", "Nora Nomail"), ("skip", "Léa Newcomer"), ("skip", "42 people"), ("suspend", "jean.dupont@acme.fr"),
    ]  # fmt: skip
    assert "skip flag: e_skip_elevo_sync is checked" in events[1]["message"] and "no email" in events[2]["message"]
    assert "41 departed, none of them in the last file; 1 skip flag, as in the last file" in events[3]["message"]
    assert "departed: their contract ended on 2025-01-31" in events[4]["message"]

    # Nothing changes: one event counts everyone left out, none is named.
    third, events = await sync_events(client, tenant)
    assert counts(third) == {"total": 48, "updated": 3, "skipped": 45}
    assert [(event["action"], event["subject"]) for event in events[1:]] == [("skip", "45 people")]
    assert (
        "42 departed, none of them in the last file; 1 no email, 2 skip flag, as in the last file"
        in events[1]["message"]
    )
    preview = await client.get("/api/v1/tenants/acme/elevo/preview", headers=tenant.auth)
    assert len(preview.json()["left_out"]) == 45  # the preview still names each


def no_secret_anywhere(secret: str, *texts: str) -> None:
    for text in texts:
        assert secret not in text


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"password": "not-the-password"}, "Elevo's SFTP server refused the username or password/key"),
        (
            {"host_key": asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode()},
            "presented a host key that is not the configured host_key",
        ),
    ],
    ids=["wrong password", "wrong host key"],
)
async def test_a_wrong_password_or_host_key_fails_in_plain_words_and_uploads_nothing(
    client: httpx.AsyncClient,
    lucca: LuccaAccount,
    sftp: SftpSandbox,
    live_api: LiveServer,
    caplog: pytest.LogCaptureFixture,
    change: dict[str, Any],
    words: str,
) -> None:
    caplog.set_level(logging.DEBUG)
    tenant = await elevo_tenant(client, lucca, sftp, sftp_changes=change)
    lucca.server.control.delete(f"/lucca/accounts/{lucca.name}/calls").raise_for_status()
    run = await sync(client, tenant)
    assert run["status"] == "failed" and words in run["error"] and "nothing was uploaded" in run["error"], run
    [failure] = await events_of(client, tenant, run["id"])
    assert failure["action"] == "fail" and words in failure["message"]
    assert sftp.files() == {} and sftp.renames == []
    assert lucca.calls()["items"] == []  # the server is checked before Lucca is read
    connector = await client.get("/api/v1/tenants/acme/connectors/elevo", headers=tenant.auth)
    assert connector.json()["settings"]["sftp"]["password"] == "***"
    secrets = (SFTP_PASSWORD, change.get("password", SFTP_PASSWORD))
    for secret in secrets:
        no_secret_anywhere(secret, caplog.text, live_api.log(), str(run), str(failure), connector.text)


async def test_a_connection_dropped_mid_upload_is_retried_and_never_leaves_a_partial_file(
    client: httpx.AsyncClient, lucca: LuccaAccount, sftp: SftpSandbox
) -> None:
    tenant = await elevo_tenant(client, lucca, sftp)
    sftp.faults.drop_after_bytes = 200
    run = await sync(client, tenant)
    assert run["status"] == "succeeded" and run["counts"]["created"] == 4, run
    assert sftp.faults.drop_after_bytes is None  # it fired
    # Only the second attempt's file was renamed, complete; the first one's partial file was removed.
    assert uploaded(sftp) == EXPECTED_FILE
    assert [rename.size for rename in sftp.renames] == [len(EXPECTED_FILE)]


async def test_a_rename_whose_answer_is_lost_is_not_sent_again(
    client: httpx.AsyncClient, lucca: LuccaAccount, sftp: SftpSandbox
) -> None:
    tenant = await elevo_tenant(client, lucca, sftp)
    sftp.faults.drop_after_rename = True
    run = await sync(client, tenant)
    assert run["status"] == "succeeded" and run["counts"]["created"] == 4, run
    assert not sftp.faults.drop_after_rename  # it fired
    # The next attempt found the temporary file gone, so renamed: the file was not written and renamed again.
    assert uploaded(sftp) == EXPECTED_FILE
    assert len(sftp.renames) == 1


async def test_a_server_that_does_not_answer_postpones_the_run_until_it_is_back(
    client: httpx.AsyncClient, lucca: LuccaAccount, sftp: SftpSandbox
) -> None:
    tenant = await elevo_tenant(client, lucca, sftp)
    await sftp.stop()
    answer = await client.post("/api/v1/tenants/acme/elevo/sync", headers=tenant.auth)
    worker = asyncio.create_task(drain_queue())
    # Once the first attempt is postponed (its event says so), the server comes back.
    while not await events_of(client, tenant, answer.json()["run_id"]):  # noqa: ASYNC110 (the API is what says)
        await asyncio.sleep(0.05)
    await sftp.start()
    await worker
    run = await run_of(client, tenant, answer.json()["run_id"])
    assert run["status"] == "succeeded" and counts(run) == {"total": 7, "created": 4, "skipped": 3}, run
    postponed, uploaded_note = (await events_of(client, tenant, run["id"]))[:2]
    assert (postponed["action"], postponed["level"]) == ("note", "warning")
    assert "did not answer (connection refused); next try in" in postponed["message"]
    assert uploaded_note["message"].startswith("Uploaded /users-")
    assert uploaded(sftp) == EXPECTED_FILE


async def stored_secrets(database_url: str, slug: str) -> dict[str, Any]:
    """What the database holds of a connector's secrets, decrypted with the service's key."""
    connection = await asyncpg.connect(database_url.replace("+asyncpg", ""))
    try:
        encrypted = await connection.fetchval(
            "SELECT secrets_encrypted FROM connectors JOIN tenants ON tenants.id = tenant_id WHERE slug = $1", slug
        )
    finally:
        await connection.close()
    return SecretBox(os.environ["SECRET_KEY"]).decrypt_json(encrypted)


async def test_a_private_key_with_its_passphrase_signs_in_without_deriving_it_again(
    client: httpx.AsyncClient,
    lucca: LuccaAccount,
    sftp: SftpSandbox,
    migrated_database: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    key = asyncssh.generate_private_key("ssh-rsa", key_size=2048)
    sftp.client_keys.append(key)
    (sftp.root / "inbox").mkdir()
    pem = key.export_private_key("pkcs8-pem", passphrase="open sesame").decode()
    tenant = await elevo_tenant(
        client, lucca, sftp, sftp_changes={"password": None, "private_key": pem, "passphrase": "open sesame",
                                   "remote_dir": "/inbox"}
    )  # fmt: skip
    # The key was decrypted once, when given: it is kept decrypted (encrypted at rest, like its passphrase, which
    # nothing uses again).
    kept = (await stored_secrets(migrated_database, "acme"))["sftp"]
    assert set(kept) == {"private_key", "passphrase"} and kept["private_key"].startswith(
        "-----BEGIN OPENSSH PRIVATE KEY-----"
    )
    assert asyncssh.import_private_key(kept["private_key"]).public_data == key.public_data
    path = "/api/v1/tenants/acme/connectors/elevo"
    patched = await client.patch(path, json={"settings": {"schedule_hour": 4}}, headers=tenant.auth)
    assert patched.status_code == 200 and patched.json()["settings"]["sftp"]["passphrase"] == "***"
    assert (await stored_secrets(migrated_database, "acme"))["sftp"] == kept

    # The worker (in this process) derives nothing, and reads the key once per run.
    calls: list[str] = []
    real_derive, real_import = asyncssh.crypto.pbkdf2_hmac, asyncssh.import_private_key

    def derive(*args: Any) -> bytes:
        calls.append("derive")
        return real_derive(*args)

    def read(*args: Any, **options: Any) -> asyncssh.SSHKey:
        calls.append("read")
        return real_import(*args, **options)

    monkeypatch.setattr(asyncssh.pbe, "pbkdf2_hmac", derive)
    monkeypatch.setattr(asyncssh, "import_private_key", read)
    run = await sync(client, tenant)
    assert run["status"] == "succeeded", run
    assert uploaded(sftp, "/inbox") == EXPECTED_FILE
    assert sftp.files("/") == {}
    assert calls == ["read"]


async def elevo_runs(database_url: str, run_ids: list[uuid.UUID]) -> list[uuid.UUID]:
    connection = await asyncpg.connect(database_url.replace("+asyncpg", ""))
    try:
        query = "SELECT id FROM runs WHERE id = ANY($1::uuid[]) AND connector = 'elevo'"
        return [row["id"] for row in await connection.fetch(query, run_ids)]
    finally:
        await connection.close()


async def schedule_rows(database_url: str) -> list[dict[str, Any]]:
    connection = await asyncpg.connect(database_url.replace("+asyncpg", ""))
    try:
        rows = await connection.fetch("SELECT * FROM schedules WHERE operation = 'people_sync' ORDER BY due_at")
    finally:
        await connection.close()
    return [dict(row) for row in rows]


async def test_two_workers_upload_one_file_per_tenant_per_local_day(
    client: httpx.AsyncClient, sandbox: SandboxServer, sftp: SftpSandbox, migrated_database: str
) -> None:
    tenants = []
    for slug in ("acme", "globex"):
        (sftp.root / slug).mkdir()
        lucca = sandbox.new_lucca_account(users=DIRECTORY)
        nightly = {"schedule_enabled": True, "schedule_hour": 3}
        tenants.append(await elevo_tenant(client, lucca, sftp, slug, {"remote_dir": f"/{slug}"}, **nightly))
    # Enabled three days ago, and the service was down since: due, once.
    connection = await asyncpg.connect(migrated_database.replace("+asyncpg", ""))
    try:
        await connection.execute("UPDATE schedules SET enabled_at = enabled_at - interval '3 days', due_at = now()")
    finally:
        await connection.close()
    await asyncio.gather(worker_with_the_tick(), worker_with_the_tick())
    for tenant in tenants:
        # (the directory's own runs, its full syncs, are not the file's)
        listed = await client.get(f"/api/v1/tenants/{tenant.slug}/runs?connector=elevo", headers=tenant.auth)
        [run] = listed.json()["items"]
        assert (run["operation"], run["trigger"], run["status"]) == ("people_sync", "schedule", "succeeded")
        assert uploaded(sftp, f"/{tenant.slug}") == EXPECTED_FILE
    # The next night is tomorrow's 03:00, in each tenant's timezone.
    for row in await schedule_rows(migrated_database):
        offset = hour_offset(row["tenant_id"], "people_sync")
        assert row["due_at"] == next_due(row["last_run_at"], "Europe/Paris", 3, offset)


async def test_catching_up_after_downtime_once_and_a_disabled_schedule_runs_nothing(
    client: httpx.AsyncClient, lucca: LuccaAccount, sftp: SftpSandbox, migrated_database: str
) -> None:
    tenant = await elevo_tenant(client, lucca, sftp, schedule_enabled=True, schedule_hour=3)
    [row] = await schedule_rows(migrated_database)
    engine = create_engine(migrated_database, pool_size=2)
    ticks = create_sessionmaker(engine)
    try:
        back = row["due_at"] + timedelta(days=3)
        # (the directory's nightly full sync, due too, is not the file's)
        [run_id] = await elevo_runs(migrated_database, await claim_due_runs(ticks, back))  # one file when back
        assert await elevo_runs(migrated_database, await claim_due_runs(ticks, back + timedelta(minutes=1))) == []
        path = "/api/v1/tenants/acme/connectors/elevo"
        answer = await client.patch(path, json={"settings": {"schedule_enabled": False}}, headers=tenant.auth)
        assert answer.status_code == 200 and answer.json()["settings"]["sftp"]["password"] == "***"
        assert await elevo_runs(migrated_database, await claim_due_runs(ticks, back + timedelta(days=30))) == []
    finally:
        await engine.dispose()
    queue = await create_pool(RedisSettings.from_dsn(os.environ["REDIS_URL"]))
    await enqueue_run(queue, run_id)  # as the worker's tick does
    await queue.aclose()
    await drain_queue()
    listed = (await client.get("/api/v1/tenants/acme/runs?connector=elevo", headers=tenant.auth)).json()["items"]
    assert [(run["trigger"], run["status"]) for run in listed] == [("schedule", "succeeded")]
    assert uploaded(sftp) == EXPECTED_FILE
