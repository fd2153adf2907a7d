"""Tenants and the authentication matrix of contract section 2; deleting a tenant (its rows go in the background)."""

import asyncio
import uuid

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event

from app.services.execution import execute_run
from app.services.schedules import claim_due_runs
from app.services.tenants import purge_tenant
from app.workers.tasks import runs_sweep
from bench.tenant_delete import fill_tenant
from tests.e2e.conftest import WEBHOOK, drain_queue
from tests.factories import ADMIN, add_softgarden, create_tenant, hire_body

pytestmark = pytest.mark.usefixtures("clean_state")


async def test_create_returns_key_once_and_hides_secrets(client: httpx.AsyncClient) -> None:
    body = {
        "slug": "acme",
        "name": "Acme SAS",
        "lucca": {"base_url": "https://acme.ilucca.net", "api_key": "super-secret-lucca-key",
                  "oauth": {"client_id": "cid", "client_secret": "oauth-secret-value"}},
    }  # fmt: skip
    created = await client.post("/api/v1/tenants", json=body, headers=ADMIN)
    assert created.status_code == 201
    data = created.json()
    assert data["api_key"].startswith("lct_")
    assert data["timezone"] == "Europe/Paris"
    assert data["lucca"] == {
        "base_url": "https://acme.ilucca.net",
        "api_key_set": True,
        "oauth_set": True,
        "rate_limit": {"requests": 50, "per_seconds": 60},
        "poll_seconds": 60,
    }
    read = await client.get("/api/v1/tenants/acme", headers=ADMIN)
    assert read.status_code == 200
    assert "api_key" not in read.json()
    for answer in (created, read):
        assert "super-secret-lucca-key" not in answer.text and "oauth-secret-value" not in answer.text


async def test_secrets_are_not_stored_in_plain_text(client: httpx.AsyncClient, migrated_database: str) -> None:
    tenant = await create_tenant(client, "acme", api_key="super-secret-lucca-key")
    connection = await asyncpg.connect(migrated_database.replace("+asyncpg", ""))
    try:
        dump = str(await connection.fetch("SELECT * FROM tenants"))
    finally:
        await connection.close()
    assert "super-secret-lucca-key" not in dump
    assert tenant.key not in dump


async def test_duplicate_slug_is_a_conflict(client: httpx.AsyncClient) -> None:
    await create_tenant(client, "acme")
    body = {"slug": "acme", "name": "Again", "lucca": {"base_url": "https://a.ilucca.net", "api_key": "k"}}
    answer = await client.post("/api/v1/tenants", json=body, headers=ADMIN)
    assert answer.status_code == 409


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"slug": "Bad Slug"}, "slug"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"lucca": {"base_url": "https://a.ilucca.net"}}, "api_key"),
        ({"lucca": {"base_url": "https://a.ilucca.net", "api_key": "k", "rate_limit": {"requests": 0}}}, "requests"),
    ],
)
async def test_invalid_tenant_is_422_naming_the_field(
    client: httpx.AsyncClient, change: dict[str, object], field: str
) -> None:
    body = {"slug": "acme", "name": "Acme", "lucca": {"base_url": "https://a.ilucca.net", "api_key": "k"}, **change}
    answer = await client.post("/api/v1/tenants", json=body, headers=ADMIN)
    assert answer.status_code == 422
    assert field in answer.text
    assert (await client.get("/api/v1/tenants/acme", headers=ADMIN)).status_code == 404


async def test_http_upstream_refused_unless_allowed(asgi_client: httpx.AsyncClient, app: object) -> None:
    app.state.settings.allow_http_upstreams = False  # type: ignore[attr-defined]
    body = {"slug": "acme", "name": "Acme", "lucca": {"base_url": "http://127.0.0.1:9/acme", "api_key": "k"}}
    assert (await asgi_client.post("/api/v1/tenants", json=body, headers=ADMIN)).status_code == 422
    app.state.settings.allow_http_upstreams = True  # type: ignore[attr-defined]
    assert (await asgi_client.post("/api/v1/tenants", json=body, headers=ADMIN)).status_code == 201


async def test_patch_merges_nested_objects_and_keeps_secrets(client: httpx.AsyncClient) -> None:
    await create_tenant(client, "acme", rate_limit={"requests": 40, "per_seconds": 60})
    answer = await client.patch(
        "/api/v1/tenants/acme", json={"name": "Acme Group", "lucca": {"rate_limit": {"requests": 30}}}, headers=ADMIN
    )
    assert answer.status_code == 200
    data = answer.json()
    assert data["name"] == "Acme Group"
    assert data["lucca"]["rate_limit"] == {"requests": 30, "per_seconds": 60}
    assert data["lucca"]["api_key_set"] is True
    fixed = await client.patch("/api/v1/tenants/acme", json={"slug": "other"}, headers=ADMIN)
    assert fixed.status_code == 422


async def test_authentication_matrix(client: httpx.AsyncClient) -> None:
    acme = await create_tenant(client, "acme")
    other = await create_tenant(client, "other")
    new = {"slug": "new", "name": "New", "lucca": {"base_url": "https://n.ilucca.net", "api_key": "k"}}
    nobody: dict[str, str] = {}
    wrong = {"Authorization": "Bearer not-a-key"}
    expected = [
        ("POST", "/api/v1/tenants", new, [(ADMIN, 201), (acme.auth, 403), (nobody, 401), (wrong, 401)]),
        ("GET", "/api/v1/tenants/acme", None, [(ADMIN, 200), (acme.auth, 200), (other.auth, 404), (nobody, 401)]),
        ("PATCH", "/api/v1/tenants/acme", {"name": "X"}, [(acme.auth, 403), (other.auth, 404), (wrong, 401)]),
        ("DELETE", "/api/v1/tenants/acme", None, [(acme.auth, 403), (other.auth, 404), (nobody, 401)]),
        ("GET", "/api/v1/tenants/acme/runs", None, [(acme.auth, 200), (other.auth, 404), (wrong, 401)]),
    ]
    for method, path, body, cases in expected:
        for headers, status in cases:
            answer = await client.request(method, path, json=body, headers=headers)
            assert answer.status_code == status, (method, path, headers, answer.text)
            if status in (401, 403, 404):
                assert "acme" not in answer.text.lower()


async def test_delete_removes_the_tenant(client: httpx.AsyncClient) -> None:
    tenant = await create_tenant(client, "acme")
    assert (await client.delete("/api/v1/tenants/acme", headers=ADMIN)).status_code == 204
    assert (await client.get("/api/v1/tenants/acme", headers=ADMIN)).status_code == 404
    assert (await client.get("/api/v1/tenants/acme", headers=tenant.auth)).status_code == 401


# Deleting a tenant cascades through every foreign key: each needs an index on its referencing columns, or every
# row deleted on the other side scans the whole referencing table (once per tenant, once per run).
UNINDEXED_FOREIGN_KEYS = """
    SELECT constraint_.conrelid::regclass::text || '(' || string_agg(column_.attname, ', ' ORDER BY key.position) || ')'
    FROM pg_constraint AS constraint_
    CROSS JOIN LATERAL unnest(constraint_.conkey) WITH ORDINALITY AS key(number, position)
    JOIN pg_attribute AS column_ ON column_.attrelid = constraint_.conrelid AND column_.attnum = key.number
    WHERE constraint_.contype = 'f' AND constraint_.connamespace = 'public'::regnamespace
      AND NOT EXISTS (
        SELECT FROM pg_index AS index_
        WHERE index_.indrelid = constraint_.conrelid AND index_.indisvalid
          -- The key's columns lead the index, in any order.
          AND (index_.indkey::int2[])[0:cardinality(constraint_.conkey) - 1] @> constraint_.conkey
          -- A partial index serves the key only when it leaves out nothing but the rows whose key is null.
          AND (index_.indpred IS NULL OR cardinality(constraint_.conkey) = 1
               AND pg_get_expr(index_.indpred, index_.indrelid) = format('(%I IS NOT NULL)', column_.attname))
      )
    GROUP BY constraint_.oid, constraint_.conrelid
    ORDER BY 1
"""


async def test_every_foreign_key_is_indexed(migrated_database: str) -> None:
    connection = await asyncpg.connect(migrated_database.replace("+asyncpg", ""))
    try:
        assert [row[0] for row in await connection.fetch(UNINDEXED_FOREIGN_KEYS)] == []
    finally:
        await connection.close()


async def test_the_index_check_finds_keys_without_a_leading_index(migrated_database: str) -> None:
    connection = await asyncpg.connect(migrated_database.replace("+asyncpg", ""))
    probes = connection.transaction()
    await probes.start()
    try:
        for statement in (
            "CREATE TABLE probe_bare (tenant_id uuid REFERENCES tenants(id))",
            "CREATE TABLE probe_second (tenant_id uuid REFERENCES tenants(id), at timestamptz)",
            "CREATE INDEX ON probe_second (at, tenant_id)",
            "CREATE TABLE probe_leading (tenant_id uuid REFERENCES tenants(id), at timestamptz)",
            "CREATE INDEX ON probe_leading (tenant_id, at)",
            "CREATE TABLE probe_not_null (run_id uuid REFERENCES runs(id))",
            "CREATE INDEX ON probe_not_null (run_id) WHERE run_id IS NOT NULL",
            "CREATE TABLE probe_partial (run_id uuid REFERENCES runs(id), done boolean)",
            "CREATE INDEX ON probe_partial (run_id) WHERE done",
            "CREATE TABLE probe_expression (tenant_id uuid REFERENCES tenants(id))",
            "CREATE INDEX ON probe_expression ((tenant_id::text))",
        ):
            await connection.execute(statement)
        found = {row[0] for row in await connection.fetch(UNINDEXED_FOREIGN_KEYS)}
    finally:
        await probes.rollback()
        await connection.close()
    assert {name for name in found if name.startswith("probe_")} == {
        "probe_bare(tenant_id)",
        "probe_second(tenant_id)",
        "probe_partial(run_id)",
        "probe_expression(tenant_id)",
    }


# Deleting a tenant: it is gone from the answer on; its rows go in the background (tenants.purge)

# Every table with a tenant_id (tables added later too), and the events of the tenant's runs.
ROWS_OF_TENANT = """
    SELECT table_name FROM information_schema.columns WHERE table_schema = 'public' AND column_name = 'tenant_id'
"""


async def rows_of(database_url: str, tenant_id: uuid.UUID) -> dict[str, int]:
    """How many rows the tenant has in each table (its own row in `tenants`)."""
    connection = await asyncpg.connect(database_url.replace("+asyncpg", ""))
    try:
        tables = [row[0] for row in await connection.fetch(ROWS_OF_TENANT)]
        counts = {
            table: await connection.fetchval(f"SELECT count(*) FROM {table} WHERE tenant_id = $1", tenant_id)  # noqa: S608
            for table in tables
        }
        counts["run_events"] = await connection.fetchval(
            "SELECT count(*) FROM run_events JOIN runs ON runs.id = run_events.run_id WHERE runs.tenant_id = $1",
            tenant_id,
        )
        counts["run_items"] = await connection.fetchval(
            "SELECT count(*) FROM run_items JOIN runs ON runs.id = run_items.run_id WHERE runs.tenant_id = $1",
            tenant_id,
        )
        counts["tenants"] = await connection.fetchval("SELECT count(*) FROM tenants WHERE id = $1", tenant_id)
    finally:
        await connection.close()
    return counts


async def fill_ledgers(database_url: str, tenant_id: uuid.UUID, items_per_run: int) -> None:
    """Each of the tenant's runs gets `items_per_run` items in its ledger."""
    connection = await asyncpg.connect(database_url.replace("+asyncpg", ""))
    try:
        await connection.execute(
            """INSERT INTO run_items (run_id, item_id, outcome, at)
               SELECT runs.id, item::text, 'created', now() FROM runs, generate_series(1, $2) AS item
               WHERE runs.tenant_id = $1""",
            tenant_id,
            items_per_run,
        )
    finally:
        await connection.close()


async def tenant_id_of(database_url: str, slug: str) -> uuid.UUID:
    connection = await asyncpg.connect(database_url.replace("+asyncpg", ""))
    try:
        found: uuid.UUID = await connection.fetchval("SELECT id FROM tenants WHERE slug = $1", slug)
    finally:
        await connection.close()
    return found


def console_token(answer: httpx.Response) -> dict[str, str]:
    assert answer.status_code == 201, answer.text
    return {"Authorization": f"Bearer {answer.json()['url'].split('#token=')[1]}"}


async def test_deleting_a_big_tenant_answers_before_its_rows_go(
    client: httpx.AsyncClient, migrated_database: str
) -> None:
    acme = await add_softgarden(client, await create_tenant(client, "acme"))
    link = console_token(await client.post("/api/v1/tenants/acme/console-links", headers=ADMIN))
    acme_id = await tenant_id_of(migrated_database, "acme")
    await fill_tenant(migrated_database, acme_id, runs=1_000, events_per_run=50, cards=5_000)
    before = await rows_of(migrated_database, acme_id)
    assert (before["runs"], before["run_events"], before["cards_events"]) == (1_000, 50_000, 5_000)

    assert (await client.delete("/api/v1/tenants/acme", headers=ADMIN)).status_code == 204
    # The answer did not wait for the rows: they are all still there, and the tenant is gone everywhere.
    assert await rows_of(migrated_database, acme_id) == before
    assert (await client.get("/api/v1/tenants/acme", headers=ADMIN)).status_code == 404
    assert (await client.delete("/api/v1/tenants/acme", headers=ADMIN)).status_code == 404
    assert (await client.get("/api/v1/tenants", headers=ADMIN)).json()["items"] == []
    for credentials in (acme.auth, link):
        assert (await client.get("/api/v1/me", headers=credentials)).status_code == 401
    assert (await client.post(WEBHOOK, json=hire_body(), headers=acme.webhook_auth)).status_code == 401
    # The slug is free at once; the new tenant sees nothing of the old one.
    again = await create_tenant(client, "acme")
    assert (await client.get("/api/v1/tenants/acme/runs", headers=again.auth)).json()["items"] == []

    await drain_queue()  # the worker's job removes the old tenant's rows, in batches
    assert set((await rows_of(migrated_database, acme_id)).values()) == {0}
    assert (await client.get("/api/v1/tenants/acme", headers=again.auth)).status_code == 200


async def test_a_deleted_tenant_runs_nothing_and_no_schedule_of_it_fires(
    client: httpx.AsyncClient, app: FastAPI, migrated_database: str
) -> None:
    acme = await add_softgarden(client, await create_tenant(client, "acme"))
    run_id = (await client.post(WEBHOOK, json=hire_body(), headers=acme.webhook_auth)).json()["run_id"]
    cards = {"api_base_url": "http://127.0.0.1:9/cards", "api_token": "t", "space_id": "s",
             "stats_sync": {"enabled": True, "hour": 2}}  # fmt: skip
    put = await client.put("/api/v1/tenants/acme/connectors/cards", json={"settings": cards}, headers=acme.auth)
    assert put.status_code == 200, put.text
    connection = await asyncpg.connect(migrated_database.replace("+asyncpg", ""))
    try:
        await connection.execute("UPDATE schedules SET due_at = now() - interval '1 minute'")
        assert (await client.delete("/api/v1/tenants/acme", headers=ADMIN)).status_code == 204
        services = app.state.services
        assert await claim_due_runs(services.sessionmaker) == []
        assert await execute_run(services, uuid.UUID(run_id)) is None
        assert await connection.fetchval("SELECT status FROM runs WHERE id = $1", uuid.UUID(run_id)) == "queued"
        # Every job is lost (Redis emptied): the sweep queues the tenant's purge again, never its run.
        await services.redis.flushdb()
        assert await runs_sweep({"services": services}) == 1
        assert not await services.redis.exists(f"arq:job:run:{run_id}")
        await drain_queue()
        assert await connection.fetchval("SELECT count(*) FROM runs") == 0
    finally:
        await connection.close()


async def test_the_purge_goes_on_where_a_dead_worker_left_it(
    client: httpx.AsyncClient, app: FastAPI, migrated_database: str
) -> None:
    await create_tenant(client, "acme")
    acme_id = await tenant_id_of(migrated_database, "acme")
    await fill_tenant(migrated_database, acme_id, runs=300, events_per_run=20, cards=3_000)
    await fill_ledgers(migrated_database, acme_id, items_per_run=20)
    before = await rows_of(migrated_database, acme_id)
    assert (await client.delete("/api/v1/tenants/acme", headers=ADMIN)).status_code == 204
    services = app.state.services
    await services.redis.flushdb()  # the job is lost with its worker

    deletes = 0

    def die_at_the_third_delete(_connection: object, _cursor: object, statement: str, *_: object) -> None:
        nonlocal deletes
        deletes += statement.startswith("DELETE")
        if deletes == 3:
            raise ConnectionResetError("the worker died")

    engine = services.engine.sync_engine
    event.listen(engine, "before_cursor_execute", die_at_the_third_delete)
    try:
        with pytest.raises(ConnectionResetError):
            await purge_tenant(services.sessionmaker, acme_id)
    finally:
        event.remove(engine, "before_cursor_execute", die_at_the_third_delete)
    # Each batch is committed on its own: what went stays gone, the rest is still there.
    partly = await rows_of(migrated_database, acme_id)
    assert 0 < partly["run_events"] < before["run_events"] and partly["runs"] == before["runs"]

    assert await runs_sweep({"services": services}) == 1
    await drain_queue()
    assert set((await rows_of(migrated_database, acme_id)).values()) == {0}
    await purge_tenant(services.sessionmaker, acme_id)  # once more: nothing left to do


async def test_two_deletes_at_once_delete_once(client: httpx.AsyncClient) -> None:
    await create_tenant(client, "acme")
    answers = await asyncio.gather(*(client.delete("/api/v1/tenants/acme", headers=ADMIN) for _ in range(4)))
    assert sorted(answer.status_code for answer in answers) == [204, 404, 404, 404]


# Rotating the tenant key (contract section 2)


async def rotate(client: httpx.AsyncClient, slug: str, auth: dict[str, str]) -> httpx.Response:
    return await client.post(f"/api/v1/tenants/{slug}/rotate-key", headers=auth)


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def test_a_rotated_key_is_refused_at_once_by_every_process(
    client: httpx.AsyncClient, asgi_client: httpx.AsyncClient, migrated_database: str
) -> None:
    acme = await create_tenant(client, "acme")
    # Two API processes: the uvicorn server, and an app of this test's own with its own pools.
    for api in (client, asgi_client):
        assert (await api.get("/api/v1/tenants/acme", headers=acme.auth)).status_code == 200
    rotated = await rotate(client, "acme", acme.auth)
    assert rotated.status_code == 200
    assert list(rotated.json()) == ["api_key"]
    new_key = rotated.json()["api_key"]
    assert new_key.startswith("lct_") and new_key != acme.key
    for api in (client, asgi_client):
        assert (await api.get("/api/v1/tenants/acme", headers=acme.auth)).status_code == 401
        assert (await api.get("/api/v1/tenants/acme/runs", headers=bearer(new_key))).status_code == 200
    # The operator may rotate it too; the key is stored only as a hash.
    by_operator = (await rotate(asgi_client, "acme", ADMIN)).json()["api_key"]
    assert (await client.get("/api/v1/tenants/acme", headers=bearer(new_key))).status_code == 401
    assert (await client.get("/api/v1/tenants/acme", headers=bearer(by_operator))).status_code == 200
    connection = await asyncpg.connect(migrated_database.replace("+asyncpg", ""))
    try:
        assert by_operator not in str(await connection.fetch("SELECT * FROM tenants"))
    finally:
        await connection.close()


async def test_who_may_rotate_the_key(client: httpx.AsyncClient) -> None:
    acme = await create_tenant(client, "acme")
    other = await create_tenant(client, "other")
    link = console_token(await client.post("/api/v1/tenants/acme/console-links", headers=ADMIN))
    refused = await rotate(client, "acme", link)
    # A console link acts as the tenant key, but may not lock out whoever holds the key.
    assert refused.status_code == 403 and "console link" in refused.json()["detail"]
    assert (await rotate(client, "acme", other.auth)).status_code == 404
    assert (await rotate(client, "acme", {})).status_code == 401
    assert (await rotate(client, "nobody", ADMIN)).status_code == 404
    assert (await client.get("/api/v1/tenants/acme", headers=acme.auth)).status_code == 200


async def test_rotating_the_key_ends_the_links_the_key_made(client: httpx.AsyncClient) -> None:
    acme = await create_tenant(client, "acme")
    by_key = console_token(await client.post("/api/v1/tenants/acme/console-links", headers=acme.auth))
    by_operator = console_token(await client.post("/api/v1/tenants/acme/console-links", headers=ADMIN))
    new_key = bearer((await rotate(client, "acme", acme.auth)).json()["api_key"])
    # A leaked key may have made links: they go with it; the operator's stay.
    assert (await client.get("/api/v1/me", headers=by_key)).status_code == 401
    assert (await client.get("/api/v1/me", headers=by_operator)).status_code == 200
    listed = (await client.get("/api/v1/tenants/acme/console-links", headers=new_key)).json()["items"]
    assert [link["minted_by"] for link in listed] == ["operator"]


async def test_rotations_at_once_hand_out_one_key_that_works(client: httpx.AsyncClient) -> None:
    acme = await create_tenant(client, "acme")
    answers = await asyncio.gather(*(rotate(client, "acme", acme.auth) for _ in range(4)))
    statuses = sorted(answer.status_code for answer in answers)
    # The others found the key changed under them (409) or already refused (401).
    assert statuses[0] == 200 and set(statuses[1:]) <= {401, 409}, statuses
    [winner] = [answer.json()["api_key"] for answer in answers if answer.status_code == 200]
    assert (await client.get("/api/v1/tenants/acme", headers=bearer(winner))).status_code == 200
