"""`GET`/`POST …/lucca/directory` through the real server: who may call them, and what they answer before any sync."""

import httpx

from tests.factories import ADMIN, create_tenant

DIRECTORY = "/api/v1/tenants/acme/lucca/directory"


async def test_the_directory_answers_its_tenant_and_the_operator_only(client: httpx.AsyncClient) -> None:
    tenant = await create_tenant(client, "acme")
    other = await create_tenant(client, "globex")
    for method, path in (("GET", DIRECTORY), ("POST", f"{DIRECTORY}/sync")):
        assert (await client.request(method, path)).status_code == 401
        assert (await client.request(method, path, headers={"Authorization": "Bearer wrong"})).status_code == 401
        assert (await client.request(method, path, headers=other.auth)).status_code == 404
        assert (await client.request(method, path.replace("acme", "nobody"), headers=ADMIN)).status_code == 404

    empty = await client.get(DIRECTORY, headers=tenant.auth)
    assert empty.status_code == 200
    assert empty.json() == {
        "employees": 0, "departments": 0, "mode": "polling", "last_full_sync_at": None, "last_change_at": None,
        "lag_seconds": None, "webhook": {"status": "none", "message": None}, "message": None, "notices": [],
        "sync": {"status": "none", "progress": 0, "run_id": None},
    }  # fmt: skip

    first = await client.post(f"{DIRECTORY}/sync", headers=ADMIN)
    assert first.status_code == 202
    run_id = first.json()["run_id"]
    # Committed before the answer: the next request (any process) sees the run and the sync under way.
    run = (await client.get(f"/api/v1/tenants/acme/runs/{run_id}", headers=tenant.auth)).json()
    assert (run["connector"], run["operation"], run["trigger"], run["status"]) == (
        "lucca", "directory_sync", "api", "queued"
    )  # fmt: skip
    assert "added" not in run["counts"] and "gone" not in run["counts"]
    assert (await client.post(f"{DIRECTORY}/sync", headers=tenant.auth)).json() == {"run_id": run_id}
    loading = (await client.get(DIRECTORY, headers=tenant.auth)).json()
    assert loading["sync"] == {"status": "loading", "progress": 0, "run_id": run_id}
    listed = await client.get("/api/v1/tenants/acme/runs", params={"connector": "lucca"}, headers=tenant.auth)
    assert [item["id"] for item in listed.json()["items"]] == [run_id]


async def test_the_openapi_document_describes_the_directory(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    read = document["paths"]["/api/v1/tenants/{slug}/lucca/directory"]["get"]
    assert set(read["responses"]) == {"200", "401", "404", "422"}
    schema = document["components"]["schemas"]["DirectoryRead"]
    assert schema["examples"][0]["sync"]["status"] == "ready"
    sync = document["paths"]["/api/v1/tenants/{slug}/lucca/directory/sync"]["post"]
    assert set(sync["responses"]) == {"202", "401", "404", "422"}
    statuses = document["components"]["schemas"]["DirectorySync"]["properties"]["status"]["enum"]
    assert set(statuses) == {"loading", "ready", "failed", "none"}
