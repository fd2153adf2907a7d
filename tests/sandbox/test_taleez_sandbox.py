"""The Taleez sandbox speaks Taleez's candidate API: secret header, candidate reads, paging, faults, call log."""

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from app.sandbox.app import create_sandbox_app
from app.sandbox.demo import DEMO_TALEEZ_ACCOUNT, DEMO_TALEEZ_SECRET, demo_taleez_seed_payload

AUTH = {"X-taleez-api-secret": DEMO_TALEEZ_SECRET}
BASE = f"/taleez/{DEMO_TALEEZ_ACCOUNT}"
CANDIDATES = f"{BASE}/candidates"
CONTROL = f"/_sandbox/taleez/accounts/{DEMO_TALEEZ_ACCOUNT}"


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    """A sandbox with the demo Taleez account seeded."""
    transport = httpx.ASGITransport(app=create_sandbox_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as client:
        assert (await client.put(CONTROL, json=demo_taleez_seed_payload())).status_code == 204
        yield client


async def candidate_page(client: httpx.AsyncClient, query: str) -> dict[str, Any]:
    """One page of `GET /candidates?...`, checked to be a 200."""
    response = await client.get(f"{CANDIDATES}?{query}", headers=AUTH)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def calls(client: httpx.AsyncClient) -> dict[str, Any]:
    """The demo account's call log, as the control API reports it."""
    body: dict[str, Any] = (await client.get(f"{CONTROL}/calls")).json()
    return body


# --- candidates -----------------------------------------------------------------------------------


async def test_candidate_is_returned_without_envelope(client: httpx.AsyncClient) -> None:
    response = await client.get(f"{CANDIDATES}/4411", headers=AUTH)
    assert response.status_code == 200
    candidate = response.json()
    assert candidate["id"] == 4411 and isinstance(candidate["dateCreation"], int)
    assert (candidate["firstName"], candidate["lastName"]) == ("Inès", "Dupré")
    assert (candidate["mail"], candidate["phone"]) == ("ines@perso.fr", "0611223344")
    assert candidate["properties"] == [] and candidate["location"]["city"] == "Paris"


async def test_candidate_without_mail_has_no_mail(client: httpx.AsyncClient) -> None:
    candidate = (await client.get(f"{CANDIDATES}/4413", headers=AUTH)).json()
    assert candidate["firstName"] == "Léa" and "mail" not in candidate


async def test_unknown_candidate_is_404(client: httpx.AsyncClient) -> None:
    response = await client.get(f"{CANDIDATES}/9999", headers=AUTH)
    assert response.status_code == 404
    assert "9999" in response.json()["message"]


@pytest.mark.parametrize("headers", [{}, {"X-taleez-api-secret": "wrong"}, {"Authorization": DEMO_TALEEZ_SECRET}])
async def test_missing_or_wrong_secret_is_401(client: httpx.AsyncClient, headers: dict[str, str]) -> None:
    response = await client.get(f"{CANDIDATES}/4411", headers=headers)
    assert response.status_code == 401
    assert "X-taleez-api-secret" in response.json()["message"]


async def test_secret_header_name_ignores_case(client: httpx.AsyncClient) -> None:
    response = await client.get(f"{CANDIDATES}/4411", headers={"x-taleez-api-secret": DEMO_TALEEZ_SECRET})
    assert response.status_code == 200


async def test_unknown_account_is_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/taleez/nobody/candidates/4411", headers=AUTH)
    assert response.status_code == 404


# --- listing and paging ---------------------------------------------------------------------------


async def test_list_pages_from_zero_until_has_more_is_false(client: httpx.AsyncClient) -> None:
    first = await candidate_page(client, "page=0&pageSize=2")
    assert [c["id"] for c in first["list"]] == [4411, 4412] and first["hasMore"] is True
    last = await candidate_page(client, "page=1&pageSize=2")
    assert [c["id"] for c in last["list"]] == [4413] and last["hasMore"] is False
    assert await candidate_page(client, "page=5&pageSize=2") == {"list": [], "hasMore": False}


async def test_list_defaults_to_everything_on_page_zero(client: httpx.AsyncClient) -> None:
    page = await candidate_page(client, "")
    assert [c["id"] for c in page["list"]] == [4411, 4412, 4413] and page["hasMore"] is False


async def test_list_filters_by_mail_ignoring_case(client: httpx.AsyncClient) -> None:
    page = await candidate_page(client, "mail=KARIM.B@perso.fr&withProps=true")
    assert [c["id"] for c in page["list"]] == [4412]


@pytest.mark.parametrize("query", ["page=-1", "pageSize=0", "pageSize=1001", "page=abc"])
async def test_bad_paging_is_400(client: httpx.AsyncClient, query: str) -> None:
    response = await client.get(f"{CANDIDATES}?{query}", headers=AUTH)
    assert response.status_code == 400
    assert response.json()["message"]


# --- faults and call log --------------------------------------------------------------------------


async def test_fault_answers_503_then_the_real_candidate(client: httpx.AsyncClient) -> None:
    fault = {"status": 503, "retry_after": 3, "match": "GET /candidates/4411"}
    assert (await client.post(f"{CONTROL}/faults", json=fault)).status_code == 204
    assert (await client.get(f"{CANDIDATES}/4412", headers=AUTH)).status_code == 200
    failed = await client.get(f"{CANDIDATES}/4411", headers=AUTH)
    assert (failed.status_code, failed.headers["Retry-After"]) == (503, "3")
    assert (await client.get(f"{CANDIDATES}/4411", headers=AUTH)).json()["id"] == 4411


async def test_delay_only_fault_serves_the_real_answer(client: httpx.AsyncClient) -> None:
    await client.post(f"{CONTROL}/faults", json=[{"delay_seconds": 0.01}])
    assert (await client.get(f"{CANDIDATES}/4412", headers=AUTH)).json()["mail"] == "karim.b@perso.fr"


async def test_faults_can_be_cleared(client: httpx.AsyncClient) -> None:
    await client.post(f"{CONTROL}/faults", json={"status": 500, "count": 5})
    assert (await client.delete(f"{CONTROL}/faults")).status_code == 204
    assert (await client.get(f"{CANDIDATES}/4411", headers=AUTH)).status_code == 200


async def test_call_log_records_every_call_without_the_account_prefix(client: httpx.AsyncClient) -> None:
    await client.get(f"{CANDIDATES}/4411")
    await client.get(f"{CANDIDATES}/4411", headers=AUTH)
    await client.get(f"{CANDIDATES}?page=0&pageSize=10", headers=AUTH)
    log = await calls(client)
    assert [call["status"] for call in log["items"]] == [401, 200, 200]
    assert log["count_by_status"] == {"401": 1, "200": 2}
    assert (log["items"][2]["method"], log["items"][2]["path"]) == ("GET", "/candidates")
    assert log["items"][2]["query"] == "page=0&pageSize=10"
    assert (await client.delete(f"{CONTROL}/calls")).status_code == 204
    assert await calls(client) == {"items": [], "count_by_status": {}}


# --- control API ----------------------------------------------------------------------------------


async def test_replacing_an_account_resets_secret_candidates_faults_and_calls(client: httpx.AsyncClient) -> None:
    await client.get(f"{CANDIDATES}/4411", headers=AUTH)
    await client.post(f"{CONTROL}/faults", json={"status": 500})
    seed = {"api_secret": "other", "candidates": [{"id": 1, "firstName": "Zoé", "lastName": "Roy"}]}
    assert (await client.put(CONTROL, json=seed)).status_code == 204
    assert await calls(client) == {"items": [], "count_by_status": {}}
    assert (await client.get(f"{CANDIDATES}/4411", headers={"X-taleez-api-secret": "other"})).status_code == 404
    zoe = (await client.get(f"{CANDIDATES}/1", headers={"X-taleez-api-secret": "other"})).json()
    assert zoe["firstName"] == "Zoé" and isinstance(zoe["dateCreation"], int)


async def test_seed_is_validated(client: httpx.AsyncClient) -> None:
    assert (await client.put(CONTROL, json={"api_secret": "", "candidates": []})).status_code == 422
    assert (await client.put(CONTROL, json={"api_secret": "s", "candidates": [{"id": 1}]})).status_code == 422
    assert (await client.put(CONTROL, json={"api_secret": "s", "users": []})).status_code == 422


async def test_control_routes_of_an_unknown_account_are_404(client: httpx.AsyncClient) -> None:
    assert (await client.get("/_sandbox/taleez/accounts/nobody/calls")).status_code == 404
    assert (await client.post("/_sandbox/taleez/accounts/nobody/faults", json={"status": 500})).status_code == 404
    assert (await client.delete("/_sandbox/taleez/accounts/nobody/faults")).status_code == 404


async def test_deleted_account_answers_404(client: httpx.AsyncClient) -> None:
    assert (await client.delete(CONTROL)).status_code == 204
    assert (await client.get(f"{CANDIDATES}/4411", headers=AUTH)).status_code == 404


async def test_taleez_and_lucca_accounts_of_the_same_name_are_separate(client: httpx.AsyncClient) -> None:
    assert (await client.get("/_sandbox/lucca/accounts/demo/calls")).status_code == 404
    await client.get(f"{CANDIDATES}/4411", headers=AUTH)
    assert (await client.get("/demo/api/v3/users")).status_code == 404
    assert (await calls(client))["count_by_status"] == {"200": 1}
