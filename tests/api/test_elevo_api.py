"""The Elevo connector's settings, sync and preview over TCP (the live server): secrets kept and masked, a changed
host needs them again, bad settings are a 422 naming the field with nothing stored, 409 without a connector."""

from typing import Any

import asyncpg
import asyncssh
import httpx
import pytest
from fastapi import FastAPI

from tests.directory_copy import full_sync
from tests.factories import TenantHandle, create_tenant
from tests.live_server import LiveServer
from tests.sandbox_server import SandboxServer
from tests.unit.test_ssh_keys import HOSTILE

pytestmark = pytest.mark.usefixtures("clean_state")
PASSWORD = "elevo-sftp-Secret-42"
KEY = asyncssh.generate_private_key("ssh-ed25519")
HOST_KEY = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().strip()
ENCRYPTED_PEM = (
    asyncssh.generate_private_key("ssh-rsa", key_size=2048)
    .export_private_key("pkcs8-pem", passphrase="open sesame")
    .decode()
)
SFTP = {"host": "sftp.elevo.example", "port": 2222, "username": "acme", "password": PASSWORD, "host_key": HOST_KEY,
        "remote_dir": "/in"}  # fmt: skip
PATH = "/api/v1/tenants/acme/connectors/elevo"


def settings(**sftp: Any) -> dict[str, Any]:
    return {"sftp": {**SFTP, **sftp}, "extra_columns": {"zeta": "e_zeta", "alpha": "personalEmail", "mid": "login"}}


async def put(client: httpx.AsyncClient, tenant: TenantHandle, body: dict[str, Any]) -> httpx.Response:
    return await client.put(PATH, json={"enabled": True, "settings": body}, headers=tenant.auth)


def locs(answer: httpx.Response) -> list[list[Any]]:
    assert answer.status_code == 422, answer.text
    return [error["loc"] for error in answer.json()["detail"]]


async def test_secrets_are_masked_kept_and_never_shown(client: httpx.AsyncClient, live_api: LiveServer) -> None:
    tenant = await create_tenant(client, "acme")
    created = await put(client, tenant, settings())
    assert created.status_code == 200, created.text
    shown = created.json()["settings"]
    assert shown["sftp"] == {**SFTP, "password": "***", "private_key": None, "passphrase": None}
    assert list(shown["extra_columns"]) == ["zeta", "alpha", "mid"]  # in the order given, which is the file's
    assert (shown["skip_field_code"], shown["schedule_enabled"], shown["schedule_hour"]) == (
        "e_skip_elevo_sync",
        True,
        3,
    )
    # A PUT without the password (or with "***") and a PATCH keep it.
    again = await put(client, tenant, settings(password="***"))
    patched = await client.patch(PATH, json={"settings": {"schedule_hour": 5}}, headers=tenant.auth)
    read = await client.get(PATH, headers=tenant.auth)
    for answer in (again, patched, read):
        assert answer.status_code == 200 and answer.json()["settings"]["sftp"]["password"] == "***", answer.text
        assert list(answer.json()["settings"]["extra_columns"]) == ["zeta", "alpha", "mid"]
    assert read.json()["settings"]["schedule_hour"] == 5
    without = {key: value for key, value in SFTP.items() if key != "password"}
    kept = await put(client, tenant, {"sftp": without})
    assert kept.status_code == 200 and kept.json()["settings"]["sftp"]["password"] == "***"
    for answer in (created, again, patched, read, kept):
        assert PASSWORD not in answer.text
    assert PASSWORD not in live_api.log()


async def test_a_new_host_needs_the_secret_again(client: httpx.AsyncClient) -> None:
    tenant = await create_tenant(client, "acme")
    assert (await put(client, tenant, settings())).status_code == 200
    moved = {**SFTP, "host": "sftp2.elevo.example", "password": "***"}
    assert locs(await put(client, tenant, {"sftp": moved})) == [["body", "settings", "sftp", "password"]]
    patch = {"settings": {"sftp": {key: value for key, value in moved.items() if key != "password"}}}
    assert locs(await client.patch(PATH, json=patch, headers=tenant.auth)) == [["body", "settings", "sftp", "password"]]
    assert (await client.get(PATH, headers=tenant.auth)).json()["settings"]["sftp"]["host"] == "sftp.elevo.example"
    assert (await put(client, tenant, {"sftp": {**moved, "password": "new-password"}})).status_code == 200


async def test_switching_from_a_password_to_a_key(client: httpx.AsyncClient) -> None:
    tenant = await create_tenant(client, "acme")
    assert (await put(client, tenant, settings())).status_code == 200
    key = KEY.export_private_key().decode()
    # The stored password is kept unless it is set to null: then both are given.
    assert locs(await put(client, tenant, settings(password="***", private_key=key))) == [
        ["body", "settings", "sftp", "private_key"]
    ]
    switched = await put(client, tenant, settings(password=None, private_key=key))
    assert switched.status_code == 200, switched.text
    assert switched.json()["settings"]["sftp"] | {"host_key": None} == {
        **SFTP, "host_key": None, "password": None, "private_key": "***", "passphrase": None,
    }  # fmt: skip
    assert "PRIVATE KEY" not in switched.text
    with_passphrase = await put(
        client, tenant, settings(password=None, private_key=ENCRYPTED_PEM, passphrase="open sesame")
    )
    # The key is kept decrypted: its passphrase is masked like every secret (and not asked for again by a PUT that
    # keeps the key).
    assert with_passphrase.json()["settings"]["sftp"] | {"host_key": None} == {
        **SFTP, "host_key": None, "password": None, "private_key": "***", "passphrase": "***",
    }  # fmt: skip
    assert "open sesame" not in with_passphrase.text
    assert (await put(client, tenant, settings(password=None, private_key="***"))).status_code == 200
    alone = await put(client, tenant, settings(password=None, private_key="***", passphrase="open sesame"))
    assert locs(alone) == [["body", "settings", "sftp", "passphrase"]]


@pytest.mark.parametrize("key", HOSTILE.values(), ids=HOSTILE.keys())
async def test_a_key_asking_for_too_much_work_is_refused_at_once_and_nothing_is_stored(
    client: httpx.AsyncClient, key: str
) -> None:
    """Refused from the key's own structure (tests/unit/test_ssh_keys.py), before anything is derived; how long that
    takes beside other tenants' webhooks is bench.elevo_keys' figure."""
    tenant = await create_tenant(client, "acme")
    answer = await put(client, tenant, settings(password=None, private_key=key, passphrase="pw"))
    assert locs(answer) == [["body", "settings", "sftp", "private_key"]]
    assert (await client.get(PATH, headers=tenant.auth)).status_code == 404


@pytest.mark.parametrize(
    ("change", "loc"),
    [
        ({"host_key": KEY.export_private_key().decode()}, ["sftp", "host_key"]),
        ({"host_key": "ssh-ed25519 AAAAnotakey"}, ["sftp", "host_key"]),
        ({"host_key": f"{HOST_KEY}\nssh-rsa AAAA"}, ["sftp", "host_key"]),
        ({"password": None, "private_key": "-----BEGIN OPENSSH PRIVATE KEY-----\nnope\n"}, ["sftp", "private_key"]),
        ({"password": None, "private_key": ENCRYPTED_PEM}, ["sftp", "passphrase"]),
        ({"password": None, "private_key": ENCRYPTED_PEM, "passphrase": "wrong"}, ["sftp", "passphrase"]),
        ({"password": None}, ["sftp", "private_key"]),
        ({"passphrase": "only with a key"}, ["sftp", "passphrase"]),
        ({"remote_dir": "in"}, ["sftp", "remote_dir"]),
        ({"remote_dir": "/in/../etc"}, ["sftp", "remote_dir"]),
        ({"host": "sftp://elevo.example"}, ["sftp", "host"]),
        ({"port": 0}, ["sftp", "port"]),
        ({"port": "22"}, ["sftp", "port"]),
        ({"username": ""}, ["sftp", "username"]),
        ({"pasword": "typo"}, ["sftp", "pasword"]),
    ],
)
async def test_bad_sftp_settings_are_a_422_naming_the_field_and_nothing_is_stored(
    client: httpx.AsyncClient, change: dict[str, Any], loc: list[str]
) -> None:
    tenant = await create_tenant(client, "acme")
    answer = await put(client, tenant, settings(**change))
    assert locs(answer) == [["body", "settings", *loc]]
    assert PASSWORD not in answer.text and "PRIVATE KEY" not in answer.text
    assert (await client.get(PATH, headers=tenant.auth)).status_code == 404


@pytest.mark.parametrize(
    ("change", "loc"),
    [
        ({"extra_columns": {"Email": "personalEmail"}}, ["extra_columns"]),
        ({"extra_columns": {"a": "login", "A": "mail"}}, ["extra_columns"]),
        ({"extra_columns": {"birth": "birthDate"}}, ["extra_columns", "birth"]),
        ({"extra_columns": {"bad,name": "login"}}, ["extra_columns", "bad,name", "[key]"]),
        ({"skip_field_code": "skip_elevo"}, ["skip_field_code"]),
        ({"schedule_hour": 24}, ["schedule_hour"]),
        ({"schedule_enabled": "yes"}, ["schedule_enabled"]),
        ({"push_on_change": "yes"}, ["push_on_change"]),
        ({"min_interval_minutes": 0}, ["min_interval_minutes"]),
        ({"min_interval_minutes": 1441}, ["min_interval_minutes"]),
        ({"min_interval_minutes": "10"}, ["min_interval_minutes"]),
        ({"sftp": None}, ["sftp"]),
    ],
)
async def test_bad_file_settings_are_a_422_naming_the_field(
    client: httpx.AsyncClient, change: dict[str, Any], loc: list[str]
) -> None:
    tenant = await create_tenant(client, "acme")
    assert locs(await put(client, tenant, {**settings(), **change})) == [["body", "settings", *loc]]


@pytest.fixture
def production_rule(app: FastAPI) -> None:
    """The in-process app, as deployed: ALLOW_HTTP_UPSTREAMS is not set."""
    app.state.settings.allow_http_upstreams = False


@pytest.mark.usefixtures("production_rule")
@pytest.mark.parametrize(
    "host", ["localhost", "sftp.localhost", "127.0.0.1", "10.1.2.3", "2130706433", "169.254.169.254"]
)
async def test_an_sftp_host_inside_our_network_is_refused(asgi_client: httpx.AsyncClient, host: str) -> None:
    tenant = await create_tenant(asgi_client, "acme")
    assert locs(await put(asgi_client, tenant, settings(host=host))) == [["body", "settings", "sftp", "host"]]
    assert (await put(asgi_client, tenant, settings())).status_code == 200


async def runs_stored(database_url: str) -> int:
    """The Elevo runs stored (enabling the connector stored the directory's first full sync)."""
    connection = await asyncpg.connect(database_url.replace("+asyncpg", ""))
    try:
        count: int = await connection.fetchval("SELECT count(*) FROM runs WHERE connector = 'elevo'")
    finally:
        await connection.close()
    return count


async def test_a_sync_needs_an_enabled_connector_and_queues_a_run(
    client: httpx.AsyncClient, migrated_database: str
) -> None:
    tenant = await create_tenant(client, "acme")
    for method, path in (("POST", "/api/v1/tenants/acme/elevo/sync"), ("GET", "/api/v1/tenants/acme/elevo/preview")):
        missing = await client.request(method, path, headers=tenant.auth)
        assert missing.status_code == 409 and "No Elevo connector" in missing.json()["detail"]
    assert (await put(client, tenant, settings())).status_code == 200
    assert (await client.patch(PATH, json={"enabled": False}, headers=tenant.auth)).status_code == 200
    disabled = await client.post("/api/v1/tenants/acme/elevo/sync", headers=tenant.auth)
    assert disabled.status_code == 409 and disabled.json()["detail"] == "The Elevo connector is disabled."
    assert await runs_stored(migrated_database) == 0
    assert (await client.patch(PATH, json={"enabled": True}, headers=tenant.auth)).status_code == 200

    accepted = await client.post("/api/v1/tenants/acme/elevo/sync", headers=tenant.auth)
    assert accepted.status_code == 202, accepted.text
    run = (await client.get(f"/api/v1/tenants/acme/runs/{accepted.json()['run_id']}", headers=tenant.auth)).json()
    assert (run["connector"], run["operation"], run["trigger"], run["status"]) == (
        "elevo",
        "people_sync",
        "api",
        "queued",
    )
    other = await create_tenant(client, "globex")
    assert (await client.post("/api/v1/tenants/acme/elevo/sync", headers=other.auth)).status_code == 404
    assert (await client.post("/api/v1/tenants/acme/elevo/sync")).status_code == 401


async def test_before_the_first_full_sync_the_preview_says_the_directory_is_loading(
    client: httpx.AsyncClient, sandbox: SandboxServer
) -> None:
    lucca = sandbox.new_lucca_account()
    tenant = await create_tenant(client, "acme", base_url=lucca.base_url, api_key=lucca.api_key)
    assert (await put(client, tenant, settings())).status_code == 200
    lucca.server.control.delete(f"/lucca/accounts/{lucca.name}/calls").raise_for_status()
    answer = await client.get("/api/v1/tenants/acme/elevo/preview", headers=tenant.auth)
    assert answer.status_code == 200, answer.text
    assert answer.json()["rows"] == answer.json()["left_out"] == []
    assert answer.json()["directory"]["status"] == "loading"
    assert lucca.calls()["items"] == []


async def test_the_preview_of_the_demo_directory(client: httpx.AsyncClient, sandbox: SandboxServer) -> None:
    lucca = sandbox.new_lucca_account()
    tenant = await create_tenant(client, "acme", base_url=lucca.base_url, api_key=lucca.api_key)
    assert (await put(client, tenant, {"sftp": SFTP})).status_code == 200
    await full_sync(client, tenant)
    answer = await client.get("/api/v1/tenants/acme/elevo/preview", headers=tenant.auth)
    assert answer.status_code == 200, answer.text
    assert answer.json()["directory"]["status"] == "ready"
    assert {key: value for key, value in answer.json().items() if key != "directory"} == {
        "rows": [
            {"registration_number": "", "first_name": "Claire", "last_name": "Martin", "email": "claire.martin@acme.fr",
             "manager_email": "", "job_title": "CTO", "team_name": "Engineering", "arrival_date": "2019-03-01"},
            {"registration_number": "", "first_name": "Jean", "last_name": "Dupont", "email": "jean.dupont@acme.fr",
             "manager_email": "claire.martin@acme.fr", "job_title": "Developer", "team_name": "Engineering",
             "arrival_date": "2021-09-01"},
        ],
        "left_out": [{"lucca_id": 101, "name": "Paul Durand", "email": "paul.durand@acme.fr",
                      "reason": "departed: their contract ended on 2024-06-30"}],
    }  # fmt: skip


async def test_push_on_change_is_off_by_default_and_kept_as_given(client: httpx.AsyncClient) -> None:
    tenant = await create_tenant(client, "acme")
    answer = await put(client, tenant, settings())
    assert answer.status_code == 200, answer.text
    assert (answer.json()["settings"]["push_on_change"], answer.json()["settings"]["min_interval_minutes"]) == (
        False,
        10,
    )
    answer = await put(client, tenant, {**settings(), "push_on_change": True, "min_interval_minutes": 1440})
    assert answer.status_code == 200, answer.text
    assert (answer.json()["settings"]["push_on_change"], answer.json()["settings"]["min_interval_minutes"]) == (
        True,
        1440,
    )
