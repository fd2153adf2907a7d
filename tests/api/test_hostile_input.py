"""Hostile input over the real server: always a JSON 4xx naming the field, and nothing stored (contract section 3).

Every case here answered 500 (most with a plain-text body) before the input rules of app/json_body.py and
app/schemas/common.py; the valid long-name webhook lost its delivery to a 500.
"""

import json
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from pydantic import TypeAdapter

from app.config import Settings
from app.errors import UNEXPECTED
from app.json_body import MAX_DEPTH, nests_too_deep
from app.main import create_app
from app.models import Delivery, Link, RunEvent, Tenant
from app.schemas.common import Name
from app.services.softgarden import SUBJECT_MAX
from tests.factories import ADMIN, SOFTGARDEN_SETTINGS, TenantHandle, add_softgarden, create_tenant, hire_body

pytestmark = pytest.mark.usefixtures("clean_state")
WEBHOOK = "/integrations/webhooks/softgarden/candidate-hired"
TABLES = ("tenants", "connectors", "runs", "run_events", "deliveries", "links")
TALEEZ = {"api_base_url": "http://127.0.0.1:9/taleez", "api_secret": "taleez-secret", "default_establishment_id": 1,
          "default_department_id": 10, "default_role_principal_id": 55}  # fmt: skip
NEW_TENANT: dict[str, Any] = {
    "slug": "new",
    "name": "New",
    "lucca": {"base_url": "https://n.ilucca.net", "api_key": "k"},
}


async def row_counts(database_url: str) -> dict[str, int]:
    connection = await asyncpg.connect(database_url.replace("+asyncpg", ""))
    try:
        return {table: await connection.fetchval(f"SELECT count(*) FROM {table}") for table in TABLES}  # noqa: S608
    finally:
        await connection.close()


def deep(depth: int, inner: str = "1") -> str:
    return "[" * depth + inner + "]" * depth


@pytest.fixture
async def tenant(client: httpx.AsyncClient) -> TenantHandle:
    handle = await add_softgarden(client, await create_tenant(client, "acme"))
    put = await client.put("/api/v1/tenants/acme/connectors/taleez", json={"settings": TALEEZ}, headers=ADMIN)
    assert put.status_code == 200, put.text
    return handle


def refused(answer: httpx.Response, *statuses: int) -> Any:
    assert answer.status_code in statuses, (answer.status_code, answer.text[:500])
    assert answer.headers["content-type"].startswith("application/json"), answer.headers
    return answer.json()["detail"]


def field_locs(detail: Any) -> list[list[Any]]:
    return [error["loc"] for error in detail]


async def send(client: httpx.AsyncClient, method: str, path: str, raw: str | bytes, auth: dict[str, str]) -> Any:
    headers = {**auth, "Content-Type": "application/json"}
    return await client.request(method, path, content=raw if isinstance(raw, bytes) else raw.encode(), headers=headers)


async def test_huge_numbers_are_422_before_python_converts_them(
    client: httpx.AsyncClient, tenant: TenantHandle, migrated_database: str
) -> None:
    before = await row_counts(migrated_database)
    imports = "/api/v1/tenants/acme/taleez/imports"
    for raw in ('{"candidate_id": ' + "9" * 5000 + "}", '{"candidate_id": ' + "9" * 250 + "}",
                '{"candidate_id": 1e999}', '{"candidate_id": NaN}', '{"candidate_id": -Infinity}',
                '{"candidate_id": 1' + "0" * 99 + ".5}"):  # fmt: skip
        detail = refused(await send(client, "POST", imports, raw, tenant.auth), 422)
        assert field_locs(detail) in ([["body"]], [["body", "candidate_id"]]), (raw[:40], detail)
    raw = json.dumps({**NEW_TENANT, "lucca": {**NEW_TENANT["lucca"], "rate_limit": {"requests": 1}}})
    raw = raw.replace('"requests": 1', '"requests": ' + "1" * 5000)
    assert field_locs(refused(await send(client, "POST", "/api/v1/tenants", raw, ADMIN), 422)) == [["body"]]
    assert await row_counts(migrated_database) == before


async def test_deep_nesting_is_422_on_every_route_with_a_body(
    client: httpx.AsyncClient, tenant: TenantHandle, migrated_database: str
) -> None:
    before = await row_counts(migrated_database)
    routes = [("POST", "/api/v1/tenants/acme/taleez/imports", tenant.auth), ("POST", WEBHOOK, tenant.webhook_auth),
              ("POST", "/api/v1/tenants", ADMIN), ("PATCH", "/api/v1/tenants/acme", ADMIN),
              ("PUT", "/api/v1/tenants/acme/connectors/softgarden", tenant.auth),
              ("PATCH", "/api/v1/tenants/acme/connectors/taleez", tenant.auth)]  # fmt: skip
    bodies = [deep(100_000), '{"candidate": ' + '{"a":' * 50_000 + "1" + "}" * 50_000 + "}",
              '{"applicationId": "a", "firstName": "Zoë", "lastName": "M", "extra": ' + deep(MAX_DEPTH + 1) + "}",
              deep(100_000, '"]]]]"')]  # fmt: skip
    for method, path, auth in routes:
        for raw in bodies:
            detail = refused(await send(client, method, path, raw, auth), 422)
            assert detail[0]["type"] == "json_invalid" and "deeper than" in detail[0]["msg"], detail
    assert await row_counts(migrated_database) == before


def test_depth_is_measured_outside_strings() -> None:
    assert not nests_too_deep(json.dumps({"name": "[" * 10_000, "list": [[1]] * 100}).encode())
    assert not nests_too_deep(deep(MAX_DEPTH).encode())
    assert nests_too_deep(deep(MAX_DEPTH + 1).encode())
    assert nests_too_deep(('["\\"", ' + deep(MAX_DEPTH + 1) + "]").encode())


async def test_nul_is_refused_everywhere_naming_the_field(
    client: httpx.AsyncClient, tenant: TenantHandle, migrated_database: str
) -> None:
    before = await row_counts(migrated_database)
    connector = "/api/v1/tenants/acme/connectors/softgarden"
    inline = {"id": 7, "firstName": "In\x00ès", "lastName": "Dupré", "mail": "i@perso.fr"}
    cases = [
        ("POST", "/api/v1/tenants", {**NEW_TENANT, "name": "Ne\x00w"}, ADMIN, ["body", "name"]),
        ("PATCH", "/api/v1/tenants/acme", {"name": "\x00"}, ADMIN, ["body", "name"]),
        ("POST", "/api/v1/tenants", {**NEW_TENANT, "lucca": {**NEW_TENANT["lucca"], "api_key": "k\x00"}}, ADMIN,
         ["body", "lucca", "api_key"]),
        ("PUT", connector, {"settings": {**SOFTGARDEN_SETTINGS, "establishment_aliases": {"Acme\x00": 2}}},
         tenant.auth, ["body", "settings", "establishment_aliases", "Acme\x00", "[key]"]),
        ("PATCH", connector, {"settings": {"hire_statuses": ["hired\x00"]}}, tenant.auth,
         ["body", "settings", "hire_statuses", 0]),
        ("PATCH", connector, {"settings": {"professional_email_template": "{first_name}\x00@acme.fr"}}, tenant.auth,
         ["body", "settings", "professional_email_template"]),
        ("PATCH", "/api/v1/tenants/acme/connectors/taleez", {"settings": {"api_secret": "s\x00"}}, tenant.auth,
         ["body", "settings", "api_secret"]),
        ("POST", "/api/v1/tenants/acme/taleez/imports", {"candidate": inline}, tenant.auth,
         ["body", "candidate", "firstName"]),
        ("POST", WEBHOOK, hire_body(firstName="Zo\x00ë"), tenant.webhook_auth, ["body", "firstName"]),
        ("POST", WEBHOOK, hire_body(status="interview", lastName="M\x00"), tenant.webhook_auth, ["body", "lastName"]),
        ("POST", WEBHOOK, hire_body(address="1 rue\x00"), tenant.webhook_auth, ["body", "address"]),
        ("POST", WEBHOOK, hire_body(address={"city": "Berlin\x00"}), tenant.webhook_auth, ["body", "address", "city"]),
        ("POST", WEBHOOK, hire_body(candidateId="c\x00"), tenant.webhook_auth, ["body", "candidateId"]),
    ]  # fmt: skip
    for method, path, body, auth, loc in cases:
        detail = refused(await client.request(method, path, json=body, headers=auth), 422)
        assert field_locs(detail) == [loc], (method, path, detail)
        assert "NUL" in detail[0]["msg"] or "control" in detail[0]["msg"] or detail[0]["type"] != "value_error"
    for params in ({"connector": "soft\x00garden"}, {"operation": "\x00"}):
        detail = refused(await client.get("/api/v1/tenants/acme/runs", params=params, headers=tenant.auth), 422)
        assert field_locs(detail) == [["query", next(iter(params))]]
    for path in ("/api/v1/tenants/ac%00me", "/api/v1/tenants/acme%00/runs", "/api/v1/tenants/acme/runs/%00"):
        refused(await client.get(path, headers=ADMIN), 404, 422)
    refused(await client.get("/api/v1/tenants/acme/connectors/soft%00garden", headers=ADMIN), 404)
    assert await row_counts(migrated_database) == before


async def test_lone_surrogates_and_bad_utf8_are_422(
    client: httpx.AsyncClient, tenant: TenantHandle, migrated_database: str
) -> None:
    before = await row_counts(migrated_database)
    body = json.dumps(hire_body(firstName="Zo\ud800")).encode("ascii")  # a `\ud800` escape: valid JSON text
    assert field_locs(refused(await send(client, "POST", WEBHOOK, body, tenant.webhook_auth), 422)) == [
        ["body", "firstName"]
    ]
    # A key that is no text at all: pydantic cannot name it, so the 422 points at the body.
    key = json.dumps({**NEW_TENANT, "n\udc00me": 1}).encode("ascii")
    assert refused(await send(client, "POST", "/api/v1/tenants", key, ADMIN), 422)[0]["type"] == "string_unicode"
    for raw in (b'{"applicationId": "\xff\xfe"}', json.dumps(hire_body()).encode("utf-16")):
        detail = refused(await send(client, "POST", WEBHOOK, raw, tenant.webhook_auth), 422)
        assert detail[0]["type"] == "json_invalid"
    assert await row_counts(migrated_database) == before


async def test_a_nul_in_a_key_the_webhook_ignores_is_ignored(client: httpx.AsyncClient, tenant: TenantHandle) -> None:
    answer = await client.post(WEBHOOK, json={**hire_body(), "note\x00": "x\x00"}, headers=tenant.webhook_auth)
    assert answer.status_code == 202, answer.text


async def test_secrets_sent_in_headers_must_be_printable_ascii(
    client: httpx.AsyncClient, tenant: TenantHandle, migrated_database: str
) -> None:
    # httpx cannot put "é" in a header: accepted, such a key would make every later Lucca call fail.
    before = await row_counts(migrated_database)
    lucca = {"base_url": "https://beta.ilucca.net", "api_key": "clé-secrète"}
    created = await client.post("/api/v1/tenants", json={"slug": "beta", "name": "Beta", "lucca": lucca}, headers=ADMIN)
    detail = refused(created, 422)
    assert field_locs(detail) == [["body", "lucca", "api_key"]] and "ASCII" in detail[0]["msg"]
    cards = {"api_token": "tökén", "space_id": "acme"}
    put = await client.put("/api/v1/tenants/acme/connectors/cards", json={"settings": cards}, headers=tenant.auth)
    assert field_locs(refused(put, 422)) == [["body", "settings", "api_token"]]
    assert await row_counts(migrated_database) == before


async def test_ids_past_their_columns_are_422(
    client: httpx.AsyncClient, tenant: TenantHandle, migrated_database: str
) -> None:
    before = await row_counts(migrated_database)
    imports = "/api/v1/tenants/acme/taleez/imports"
    for body, loc in (({"candidate_id": 10**90}, ["body", "candidate_id"]),
                      ({"candidate_id": 2**31}, ["body", "candidate_id"]),
                      ({"candidate": {"id": 2**40, "firstName": "A", "lastName": "B", "mail": "a@b.fr"}},
                       ["body", "candidate", "id"])):  # fmt: skip
        assert field_locs(refused(await client.post(imports, json=body, headers=tenant.auth), 422)) == [loc]
    for changes, loc in (({"applicationId": "a" * 201}, ["body", "applicationId"]),
                         ({"candidateId": 2**64}, ["body", "candidateId"])):  # fmt: skip
        answer = await client.post(WEBHOOK, json=hire_body(**changes), headers=tenant.webhook_auth)
        assert field_locs(refused(answer, 422)) == [loc]
    assert await row_counts(migrated_database) == before


def test_what_requests_store_fits_its_columns() -> None:
    def length(column: Any) -> int:
        return int(column.type.length)

    assert length(RunEvent.__table__.c.subject) == SUBJECT_MAX
    name_max = TypeAdapter(Name).json_schema()["maxLength"]
    assert name_max <= length(Tenant.__table__.c.name)
    # A Softgarden applicationId (a Name) becomes the delivery's and the link's external id.
    assert name_max <= length(Delivery.__table__.c.external_id) == length(Link.__table__.c.external_id)
    # A Taleez id is at most 2**31 - 1: 10 digits.
    assert len(str(2**31 - 1)) <= length(Link.__table__.c.external_id)


async def test_a_long_named_candidate_in_another_status_is_stored_and_skipped(
    client: httpx.AsyncClient, tenant: TenantHandle
) -> None:
    body = {"applicationId": "app-long", "status": "interview", "firstName": "F" * 200, "lastName": "L" * 200}
    answer = await client.post(WEBHOOK, json=body, headers=tenant.webhook_auth)
    assert answer.status_code == 202, answer.text
    run_id = answer.json()["run_id"]
    run = (await client.get(f"/api/v1/tenants/acme/runs/{run_id}", headers=tenant.auth)).json()
    assert run["status"] == "succeeded" and run["counts"]["skipped"] == 1
    events = (await client.get(f"/api/v1/tenants/acme/runs/{run_id}/events", headers=tenant.auth)).json()["items"]
    assert len(events[0]["subject"]) == SUBJECT_MAX and events[0]["subject"].endswith("…")
    email = {**body, "applicationId": "app-mail", "email": "e" * 480 + "@example.com"}
    assert (await client.post(WEBHOOK, json=email, headers=tenant.webhook_auth)).status_code == 202


async def test_anything_unexpected_is_a_json_500_naming_nothing_internal(clean_state: None) -> None:
    app: FastAPI = create_app(Settings())

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("password=hunter2 in /srv/app/secret.py")

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        answer = await http.get("/boom")
    assert answer.status_code == 500
    assert answer.json() == {"detail": UNEXPECTED}
    assert "hunter2" not in answer.text and "RuntimeError" not in answer.text


async def test_a_webhook_failing_unexpectedly_is_a_json_500_too(clean_state: None) -> None:
    # The webhooks are answered past FastAPI's request handling (app.direct_routes), still inside its error handler.
    app = create_app(Settings(database_url="postgresql+asyncpg://postgres@127.0.0.1:9/nowhere"))
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        answer = await http.post(WEBHOOK, json=hire_body(), headers={"Authorization": "Bearer some-token"})
    assert answer.status_code == 500
    assert answer.json() == {"detail": UNEXPECTED}


async def test_an_unknown_query_parameter_is_refused_by_name(
    client: httpx.AsyncClient, tenant: TenantHandle, migrated_database: str
) -> None:
    """A typo in a filter would otherwise list every run as if it were filtered (or a write ignore an option)."""
    assert (await client.get("/api/v1/tenants/acme/runs?status=failed", headers=ADMIN)).status_code == 200
    detail = refused(await client.get("/api/v1/tenants/acme/runs?satus=failed&limit=5", headers=ADMIN), 422)
    assert field_locs(detail) == [["query", "satus"]]
    # A write with an unknown parameter changes nothing.
    before = await row_counts(migrated_database)
    answer = await client.post("/api/v1/tenants/acme/taleez/imports?dry=1", json={"candidate_id": 1}, headers=ADMIN)
    assert field_locs(refused(answer, 422)) == [["query", "dry"]]
    assert await row_counts(migrated_database) == before
    # The console's own call is checked like the rest.
    assert field_locs(refused(await client.get("/api/v1/me?x=1", headers=ADMIN), 422)) == [["query", "x"]]
    # Webhooks take partners' payloads as they come: an extra parameter does not refuse a delivery.
    hired = await client.post(
        f"{WEBHOOK}?source=sg", json=hire_body(applicationId="query-1"), headers=tenant.webhook_auth
    )
    assert hired.status_code in (200, 201, 202), hired.text
