"""The Lucca sandbox speaks the OAuth API (v5) from the same state as v3: tokens, cursor pages with embedded
resources, `id=` and `status` filters, scopes, `problem+json`; `modifiedAt` on v3; controls that change people."""

from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest

from app.sandbox.demo import DEMO_OAUTH_CLIENT_ID, DEMO_OAUTH_CLIENT_SECRET, demo_seed_payload, directory_seed_payload
from tests.sandbox_server import LuccaAccount, SandboxServer

V5 = {"Api-Version": "2024-11-01"}
EMBEDDED = "include=embedded,links,totalCount"


@pytest.fixture
def account(sandbox: SandboxServer) -> LuccaAccount:
    return sandbox.new_lucca_account()


def token_form(**overrides: str) -> dict[str, str]:
    return {
        "grant_type": "client_credentials",
        "client_id": DEMO_OAUTH_CLIENT_ID,
        "client_secret": DEMO_OAUTH_CLIENT_SECRET,
        "scope": "employees.readonly departments.readonly",
        **overrides,
    }


async def bearer(http: httpx.AsyncClient, account: LuccaAccount, **overrides: str) -> dict[str, str]:
    """The headers of a v5 call with a fresh token."""
    answer = await http.post(f"/{account.name}/connect/token", data=token_form(**overrides))
    assert answer.status_code == 200, answer.text
    return {**V5, "Authorization": f"Bearer {answer.json()['access_token']}"}


async def v5_pages(http: httpx.AsyncClient, url: str, headers: dict[str, str]) -> list[dict[str, Any]]:
    """Every page of a collection, following `links.next.href`."""
    pages = []
    next_url: str | None = url
    while next_url is not None:
        answer = await http.get(next_url, headers=headers)
        assert answer.status_code == 200, answer.text
        pages.append(answer.json())
        link = answer.json()["links"]["next"]
        next_url = None if link is None else link["href"]
    return pages


# --- the token endpoint ---------------------------------------------------------------------------


async def test_a_form_encoded_client_credentials_request_gets_a_bearer_token(
    http: httpx.AsyncClient, account: LuccaAccount
) -> None:
    answer = await http.post(f"/{account.name}/connect/token", data=token_form())
    assert answer.status_code == 200
    body = answer.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 1800
    assert len(body["access_token"]) > 20
    assert account.call_counts()["token_by_client"] == {DEMO_OAUTH_CLIENT_ID: 1}


async def test_a_json_token_request_is_refused(http: httpx.AsyncClient, account: LuccaAccount) -> None:
    answer = await http.post(f"/{account.name}/connect/token", json=token_form())
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_request"


@pytest.mark.parametrize("overrides", [{"client_secret": "wrong"}, {"client_id": "nobody"}, {"client_id": ""}], ids=str)
async def test_an_unknown_client_or_a_wrong_secret_is_invalid_client(
    http: httpx.AsyncClient, account: LuccaAccount, overrides: dict[str, str]
) -> None:
    answer = await http.post(f"/{account.name}/connect/token", data=token_form(**overrides))
    assert answer.status_code == 401
    assert answer.json()["error"] == "invalid_client"
    assert DEMO_OAUTH_CLIENT_SECRET not in answer.text


async def test_a_scope_the_client_may_not_have_is_invalid_scope(http: httpx.AsyncClient, account: LuccaAccount) -> None:
    answer = await http.post(
        f"/{account.name}/connect/token", data=token_form(scope="employees.readonly leaves.readwrite")
    )
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_scope"


async def test_a_token_expires_and_a_new_one_works(http: httpx.AsyncClient, account: LuccaAccount) -> None:
    account.control("PATCH", "/settings", json={"token_lifetime_seconds": 5})
    answer = await http.post(f"/{account.name}/connect/token", data=token_form())
    assert answer.json()["expires_in"] == 5
    headers = {**V5, "Authorization": f"Bearer {answer.json()['access_token']}"}
    assert (await http.get(f"/{account.name}/lucca-api/employees", headers=headers)).status_code == 200

    account.control("POST", "/oauth/expire-tokens")
    expired = await http.get(f"/{account.name}/lucca-api/employees", headers=headers)
    assert expired.status_code == 401
    assert expired.headers["content-type"] == "application/problem+json"
    assert expired.json()["status"] == 401
    renewed = await http.get(f"/{account.name}/lucca-api/employees", headers=await bearer(http, account))
    assert renewed.status_code == 200
    assert account.call_counts()["token"] == 2


async def test_a_registered_client_gets_only_its_scopes(http: httpx.AsyncClient, account: LuccaAccount) -> None:
    account.control(
        "PUT", "/oauth-clients/reader", json={"client_secret": "s3cret", "scopes": ["departments.readonly"]}
    )
    headers = await bearer(http, account, client_id="reader", client_secret="s3cret", scope="")
    assert (await http.get(f"/{account.name}/lucca-api/departments", headers=headers)).status_code == 200
    refused = await http.get(f"/{account.name}/lucca-api/employees", headers=headers)
    assert refused.status_code == 403
    assert refused.headers["content-type"] == "application/problem+json"
    # Like Lucca, the refusal does not say which scope was missing.
    assert "employees" not in refused.json()["detail"]


# --- v5 credentials and headers -------------------------------------------------------------------


async def test_v5_needs_a_token_and_the_api_version(http: httpx.AsyncClient, account: LuccaAccount) -> None:
    url = f"/{account.name}/lucca-api/employees"
    assert (await http.get(url, headers=V5)).status_code == 401
    legacy_key = {**V5, "Authorization": f"lucca application={account.api_key}"}
    assert (await http.get(url, headers=legacy_key)).status_code == 401
    headers = await bearer(http, account)
    no_version = await http.get(url, headers={"Authorization": headers["Authorization"]})
    assert no_version.status_code == 400
    assert "Api-Version" in no_version.json()["detail"]
    answer = await http.get(url, headers=headers)
    assert answer.headers["Api-Version"] == "2024-11-01"
    assert "Sunset" not in answer.headers


async def test_a_sunset_set_by_a_control_is_on_every_v5_answer(http: httpx.AsyncClient, account: LuccaAccount) -> None:
    account.control(
        "PATCH", "/settings", json={"sunset": "Sat, 01 Jan 2028 00:00:00 GMT", "deprecation": "@1798761600"}
    )
    answer = await http.get(f"/{account.name}/lucca-api/departments", headers=await bearer(http, account))
    assert answer.headers["Sunset"] == "Sat, 01 Jan 2028 00:00:00 GMT"
    assert answer.headers["Deprecation"] == "@1798761600"


async def test_v5_and_v3_share_one_rate_limit(http: httpx.AsyncClient, sandbox: SandboxServer) -> None:
    account = sandbox.new_lucca_account(requests_per_window=2)
    headers = await bearer(http, account)
    v3 = await http.get(
        f"/{account.name}/api/v3/users", headers={"Authorization": f"lucca application={account.api_key}"}
    )
    assert v3.status_code == 200
    assert (await http.get(f"/{account.name}/lucca-api/employees", headers=headers)).status_code == 200
    limited = await http.get(f"/{account.name}/lucca-api/departments", headers=headers)
    assert limited.status_code == 429
    assert limited.headers["content-type"] == "application/problem+json"
    assert int(limited.headers["Retry-After"]) >= 1
    # Token requests are not in the window.
    assert (await http.post(f"/{account.name}/connect/token", data=token_form())).status_code == 200


async def test_an_injected_fault_on_v5_is_a_problem(http: httpx.AsyncClient, account: LuccaAccount) -> None:
    account.add_faults({"status": 503, "match": "GET /lucca-api/employees"})
    answer = await http.get(f"/{account.name}/lucca-api/employees", headers=await bearer(http, account))
    assert answer.status_code == 503
    assert answer.json()["status"] == 503


# --- employees ------------------------------------------------------------------------------------


async def test_employees_page_by_cursor_with_embedded_resources_matching_v3(
    http: httpx.AsyncClient, sandbox: SandboxServer
) -> None:
    account = sandbox.new_lucca_account(**directory_seed_payload(250))
    pages = await v5_pages(
        http, f"/{account.name}/lucca-api/employees?limit=100&{EMBEDDED}", await bearer(http, account)
    )
    assert [len(page["items"]) for page in pages] == [100, 100, 53]
    assert {page["totalCount"] for page in pages} == {253}
    assert pages[0]["type"] == "employees"
    assert pages[0]["links"]["prev"] is None
    assert pages[1]["links"]["prev"]["href"].endswith(
        "lucca-api/employees?limit=100&include=embedded%2Clinks%2CtotalCount"
    )
    assert account.call_counts()["v5"] == 3

    legacy = {user["id"]: user for user in account.users()}
    employees = [employee for page in pages for employee in page["items"]]
    assert [int(employee["id"]) for employee in employees] == sorted(legacy)
    for page in pages:
        for employee in page["items"]:
            user = legacy[int(employee["id"])]
            position = page["embedded"]["job-position"][employee["applicableJobPosition"]["id"]]
            employment = page["embedded"]["employment"][employee["applicableEmployment"]["id"]]
            assert (employee["givenName"], employee["familyName"], employee["email"]) == (
                user["firstName"],
                user["lastName"],
                user["mail"],
            )
            assert position["department"]["id"] == str(user["departmentId"])
            assert position["businessEstablishment"]["id"] == str(user["legalEntityId"])
            assert position["jobTitle"] == user["jobTitle"]
            assert (position["manager"] or {}).get("id") == (str(user["managerId"]) if user["managerId"] else None)
            assert employment["start"]["date"] == user["dtContractStart"][:10]
            end = user["dtContractEnd"]
            assert employment["end"] == (None if end is None else {"date": end[:10]})
            assert employment["legalEntity"]["id"] == "1"
            assert employment["employee"]["id"] == employee["id"]


async def test_without_include_there_are_no_links_count_or_embedded(
    http: httpx.AsyncClient, account: LuccaAccount
) -> None:
    body = (await http.get(f"/{account.name}/lucca-api/employees", headers=await bearer(http, account))).json()
    assert set(body) == {"type", "url", "items"}
    assert len(body["items"]) == 3


async def test_status_follows_the_contract(http: httpx.AsyncClient, account: LuccaAccount) -> None:
    future = (date.today() + timedelta(days=30)).isoformat()
    hired = account.hire(firstName="Nora", lastName="Petit", mail="nora.petit@acme.fr", dtContractStart=future)
    headers = await bearer(http, account)
    body = (await http.get(f"/{account.name}/lucca-api/employees", headers=headers)).json()
    statuses = {employee["id"]: employee["status"] for employee in body["items"]}
    assert statuses == {"100": "active", "101": "deactivated", "102": "active", str(hired["id"]): "upcoming"}
    active = (await http.get(f"/{account.name}/lucca-api/employees?status=active,upcoming", headers=headers)).json()
    assert [employee["id"] for employee in active["items"]] == ["100", "102", str(hired["id"])]
    assert (await http.get(f"/{account.name}/lucca-api/employees?status=gone", headers=headers)).status_code == 400


async def test_the_id_filter_reads_the_named_employees(http: httpx.AsyncClient, account: LuccaAccount) -> None:
    headers = await bearer(http, account)
    body = (await http.get(f"/{account.name}/lucca-api/employees?id=102,100,999&{EMBEDDED}", headers=headers)).json()
    assert [employee["id"] for employee in body["items"]] == ["100", "102"]
    assert body["totalCount"] == 2
    assert set(body["embedded"]["job-position"]) == {"2000100", "2000102"}
    too_many = ",".join(str(number) for number in range(101))
    answer = await http.get(f"/{account.name}/lucca-api/employees?id={too_many}", headers=headers)
    assert answer.status_code == 400


async def test_one_employee_and_an_unknown_one(http: httpx.AsyncClient, account: LuccaAccount) -> None:
    headers = await bearer(http, account)
    body = (await http.get(f"/{account.name}/lucca-api/employees/102?include=embedded", headers=headers)).json()
    assert body["givenName"] == "Jean"
    assert body["embedded"]["job-position"]["2000102"]["manager"]["id"] == "100"
    missing = await http.get(f"/{account.name}/lucca-api/employees/999", headers=headers)
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"


async def test_a_user_created_through_v3_is_a_v5_employee(http: httpx.AsyncClient, account: LuccaAccount) -> None:
    created = await http.post(
        f"/{account.name}/api/v3/users",
        headers={"Authorization": f"lucca application={account.api_key}"},
        json={
            "firstName": "Zoë",
            "lastName": "Müller",
            "login": "zoe@acme.fr",
            "mail": "zoe@acme.fr",
            "legalEntityId": 2,
            "departmentId": 11,
            "rolePrincipalId": 55,
        },
    )
    assert created.status_code == 201
    user_id = created.json()["data"]["id"]
    body = (
        await http.get(
            f"/{account.name}/lucca-api/employees/{user_id}?include=embedded", headers=await bearer(http, account)
        )
    ).json()
    assert body["email"] == "zoe@acme.fr"
    assert body["embedded"]["job-position"][str(2_000_000 + user_id)]["businessEstablishment"]["id"] == "2"


# --- departments ----------------------------------------------------------------------------------


async def test_departments_page_and_filter_archived(http: httpx.AsyncClient, account: LuccaAccount) -> None:
    account.control("PUT", "/departments/13", json={"name": "Old team", "isActive": False, "parentId": 10})
    headers = await bearer(http, account)
    pages = await v5_pages(http, f"/{account.name}/lucca-api/departments?limit=3&include=links", headers)
    assert [[item["id"] for item in page["items"]] for page in pages] == [["10", "11", "12"], ["13"]]
    old = pages[1]["items"][0]
    assert (old["isArchived"], old["parent"]["id"], old["name"]) == (True, "10", "Old team")
    assert pages[0]["items"][0]["manager"]["id"] == "100"
    current = (await http.get(f"/{account.name}/lucca-api/departments?isArchived=false", headers=headers)).json()
    assert [item["id"] for item in current["items"]] == ["10", "11", "12"]
    one = (await http.get(f"/{account.name}/lucca-api/departments/11", headers=headers)).json()
    assert one["name"] == "Sales"


# --- v3 modifiedAt --------------------------------------------------------------------------------


async def test_modified_at_since_returns_who_changed(http: httpx.AsyncClient, sandbox: SandboxServer) -> None:
    seeded = [{**user, "modifiedAt": "2026-01-05T09:00:00"} for user in demo_seed_payload()["users"]]
    account = sandbox.new_lucca_account(users=seeded)
    key = {"Authorization": f"lucca application={account.api_key}"}
    before = datetime.now(UTC) - timedelta(seconds=1)
    account.change_person(102, jobTitle="Lead developer")
    url = f"/{account.name}/api/v3/users?fields=id,modifiedAt&modifiedAt=since,"
    since = before.replace(tzinfo=None).isoformat(timespec="seconds")
    changed = (await http.get(url + since, headers=key)).json()["data"]["items"]
    assert [user["id"] for user in changed] == [102]
    with_offset = (await http.get(url + before.isoformat().replace("+00:00", "Z"), headers=key)).json()
    assert [user["id"] for user in with_offset["data"]["items"]] == [102]
    later = (datetime.now(UTC) + timedelta(seconds=1)).replace(tzinfo=None).isoformat()
    assert (await http.get(url + later, headers=key)).json()["data"]["items"] == []
    assert (await http.get(url + "yesterday", headers=key)).status_code == 400
    seeded_since = (await http.get(url + "2026-01-05T09:00:00.000", headers=key)).json()["data"]["items"]
    assert [user["id"] for user in seeded_since] == [100, 102]


# --- controls that change people ------------------------------------------------------------------


async def test_controls_hire_rename_move_and_end_a_contract(http: httpx.AsyncClient, account: LuccaAccount) -> None:
    hired = account.hire(
        firstName="Nora", lastName="Petit", mail="nora@acme.fr", jobTitle="Designer", dtContractStart="2026-01-05"
    )
    user_id = hired["id"]
    assert (hired["login"], hired["department"]["id"], hired["rolePrincipal"]["id"]) == ("nora@acme.fr", 10, 55)
    account.change_person(user_id, firstName="Nour", lastName="Petitjean")
    account.change_person(user_id, mail="nour@acme.fr")
    account.change_person(user_id, departmentId=11)
    ended = account.change_person(user_id, dtContractEnd="2026-02-01")
    assert ended["dtContractEnd"] == "2026-02-01T00:00:00"
    headers = await bearer(http, account)
    body = (await http.get(f"/{account.name}/lucca-api/employees/{user_id}?include=embedded", headers=headers)).json()
    assert (body["givenName"], body["familyName"], body["email"], body["status"]) == (
        "Nour",
        "Petitjean",
        "nour@acme.fr",
        "deactivated",
    )
    assert body["embedded"]["job-position"][str(2_000_000 + user_id)]["department"]["id"] == "11"
    assert body["embedded"]["employment"][str(1_000_000 + user_id)]["end"] == {"date": "2026-02-01"}


async def test_a_deleted_person_is_gone_from_both_apis(http: httpx.AsyncClient, account: LuccaAccount) -> None:
    account.delete_person(102)
    key = {"Authorization": f"lucca application={account.api_key}"}
    assert (await http.get(f"/{account.name}/api/v3/users/102", headers=key)).status_code == 404
    v5 = await http.get(f"/{account.name}/lucca-api/employees/102", headers=await bearer(http, account))
    assert v5.status_code == 404
    assert account.server.control.delete(f"/lucca/accounts/{account.name}/people/102").status_code == 404


async def test_a_bad_change_is_refused_naming_the_field(account: LuccaAccount) -> None:
    answer = account.server.control.patch(f"/lucca/accounts/{account.name}/people/102", json={"departmentId": 99})
    assert answer.status_code == 400
    assert "departmentId" in answer.json()["detail"]
    missing = account.server.control.post(f"/lucca/accounts/{account.name}/people", json={"firstName": "X"})
    assert missing.status_code == 400


async def test_call_counts_are_per_surface(http: httpx.AsyncClient, account: LuccaAccount) -> None:
    key = {"Authorization": f"lucca application={account.api_key}"}
    await http.get(f"/{account.name}/api/v3/users", headers=key)
    await http.get(f"/{account.name}/organization/structure/api/departments", headers=key)
    headers = await bearer(http, account)
    await http.get(f"/{account.name}/lucca-api/employees", headers=headers)
    await http.get(f"/{account.name}/lucca-api/departments", headers=headers)
    counts = account.call_counts()
    assert {name: counts[name] for name in ("v3", "v4", "v5", "token")} == {"v3": 1, "v4": 1, "v5": 2, "token": 1}
    assert counts["v5_by_client"] == {DEMO_OAUTH_CLIENT_ID: 2}
    account.control("DELETE", "/calls")
    assert account.call_counts()["v5"] == 0


async def test_a_deleted_persons_id_is_not_given_again(account: LuccaAccount) -> None:
    hired = account.hire(firstName="Nora", lastName="Petit", mail="nora@acme.fr")
    account.delete_person(hired["id"])
    again = account.hire(firstName="Noé", lastName="Petit", mail="noe@acme.fr")
    assert again["id"] == hired["id"] + 1
