"""The Lucca sandbox speaks Lucca's v3/v4 API: auth, rate limit, paging, fields, filters, writes, faults."""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest

from app.sandbox.app import create_sandbox_app
from app.sandbox.demo import DEMO_ACCOUNT, DEMO_API_KEY, demo_seed_payload

AUTH = {"Authorization": f"lucca application={DEMO_API_KEY}"}
USERS = f"/{DEMO_ACCOUNT}/api/v3/users"
STRUCTURE = f"/{DEMO_ACCOUNT}/organization/structure/api"
CONTROL = f"/_sandbox/lucca/accounts/{DEMO_ACCOUNT}"

ClientFactory = Callable[..., Awaitable[httpx.AsyncClient]]


def new_hire(**overrides: Any) -> dict[str, Any]:
    """A valid `POST /api/v3/users?contract=true` body for the demo account."""
    return {
        "firstName": "Zoë",
        "lastName": "Müller",
        "login": "zoe.muller@acme.fr",
        "mail": "zoe.muller@acme.fr",
        "legalEntityId": 2,
        "departmentId": 10,
        "rolePrincipalId": 55,
        "dtContractStart": "2026-12-01",
        "managerId": 100,
        **overrides,
    }


@pytest.fixture
async def make_client() -> AsyncIterator[ClientFactory]:
    """Builds sandbox clients with the demo account seeded, closing them at the end."""
    clients: list[httpx.AsyncClient] = []

    async def make(window_seconds: float = 60.0, requests_per_window: int = 50) -> httpx.AsyncClient:
        app = create_sandbox_app(window_seconds=window_seconds, requests_per_window=requests_per_window)
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sandbox")
        clients.append(client)
        seeded = await client.put(CONTROL, json=demo_seed_payload())
        assert seeded.status_code == 204
        return client

    yield make
    for client in clients:
        await client.aclose()


@pytest.fixture
async def client(make_client: ClientFactory) -> httpx.AsyncClient:
    """A sandbox with the demo account and the default limit (50 per 60 s)."""
    return await make_client()


async def user_ids(client: httpx.AsyncClient, query: str) -> list[int]:
    """The ids a v3 users query returns."""
    response = await client.get(f"{USERS}?{query}", headers=AUTH)
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["data"]["items"]]


async def sandbox_user(client: httpx.AsyncClient, user_id: int) -> dict[str, Any]:
    """A user as the control API sees it (every field)."""
    response = await client.get(f"{CONTROL}/users")
    return next(user for user in response.json()["items"] if user["id"] == user_id)


# --- authentication and accounts ------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [f"lucca application={DEMO_API_KEY}", f"Lucca  application = {DEMO_API_KEY}", f"LUCCA application={DEMO_API_KEY}"],
)
async def test_accepts_the_api_key_header_in_any_case_and_spacing(client: httpx.AsyncClient, header: str) -> None:
    response = await client.get(USERS, headers={"Authorization": header})
    assert response.status_code == 200


@pytest.mark.parametrize("headers", [{}, {"Authorization": "lucca application=wrong"}, {"Authorization": "Bearer x"}])
async def test_refuses_a_missing_or_wrong_key(client: httpx.AsyncClient, headers: dict[str, str]) -> None:
    response = await client.get(USERS, headers=headers)
    assert response.status_code == 401
    assert "Message" in response.json()


async def test_unknown_account_is_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/nobody/api/v3/users", headers=AUTH)
    assert response.status_code == 404


async def test_accounts_are_separate(client: httpx.AsyncClient) -> None:
    other = {"api_key": "other-key", "users": [{"id": 1, "firstName": "Ada", "lastName": "Lovelace"}]}
    assert (await client.put("/_sandbox/lucca/accounts/other", json=other)).status_code == 204
    response = await client.get("/other/api/v3/users", headers={"Authorization": "lucca application=other-key"})
    assert response.json()["data"]["items"] == [
        {"id": 1, "name": "Ada Lovelace", "url": "http://sandbox/other/api/v3/users/1"}
    ]
    assert (await client.get("/other/api/v3/users", headers=AUTH)).status_code == 401


# --- reading users --------------------------------------------------------------------------------


async def test_users_default_to_id_name_url_and_hide_former_employees(client: httpx.AsyncClient) -> None:
    response = await client.get(USERS, headers=AUTH)
    assert response.json() == {
        "data": {
            "items": [
                {"id": 100, "name": "Claire Martin", "url": "http://sandbox/demo/api/v3/users/100"},
                {"id": 102, "name": "Jean Dupont", "url": "http://sandbox/demo/api/v3/users/102"},
            ]
        }
    }


async def test_former_employees_on_request(client: httpx.AsyncClient) -> None:
    assert await user_ids(client, "formerEmployees=true") == [100, 101, 102]
    assert await user_ids(client, "dtContractEnd=notequal,null") == [101]


async def test_fields_nested_objects_and_count(client: httpx.AsyncClient) -> None:
    query = "fields=id,firstName,dtContractStart,manager[id,name],department,legalEntity,collection.count"
    response = await client.get(f"{USERS}?{query}&paging=1,1", headers=AUTH)
    data = response.json()["data"]
    assert data["count"] == 2
    assert data["items"] == [
        {
            "id": 102,
            "firstName": "Jean",
            "dtContractStart": "2021-09-01T00:00:00",
            "manager": {"id": 100, "name": "Claire Martin"},
            "department": {"id": 10, "name": "Engineering", "url": "http://sandbox/demo/api/v3/departments/10"},
            "legalEntity": {"id": 1, "name": "Acme Paris", "url": "http://sandbox/demo/api/v3/legalentities/1"},
        }
    ]


async def test_dotted_fields_and_extended_data(client: httpx.AsyncClient) -> None:
    await client.put(f"{USERS}/100", headers=AUTH, json={"e_github_login": {"value": "claire"}})
    response = await client.get(f"{USERS}/100?fields=rolePrincipal.name,extendedData", headers=AUTH)
    user = response.json()["data"]
    assert user["rolePrincipal"] == {"name": "User"}
    assert user["extendedData"]["e_github_login"]["value"] == "claire"


async def test_paging_offset_and_limit(client: httpx.AsyncClient) -> None:
    assert await user_ids(client, "formerEmployees=true&paging=0,2") == [100, 101]
    assert await user_ids(client, "formerEmployees=true&paging=2,2") == [102]
    assert await user_ids(client, "formerEmployees=true&paging=3,2") == []


@pytest.mark.parametrize("paging", ["0,1001", "0,0", "-1,10", "abc", "1"])
async def test_bad_paging_is_400(client: httpx.AsyncClient, paging: str) -> None:
    response = await client.get(f"{USERS}?paging={paging}", headers=AUTH)
    assert response.status_code == 400
    assert "paging" in response.json()["Message"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("mail=jean.dupont@acme.fr", [102]),
        ("mail=JEAN.DUPONT@acme.fr", []),  # equality is strict, case included
        ("mail=like,JEAN.DUP", [102]),  # like: a substring, ignoring case
        ("login=like,martin&formerEmployees=true", [100]),
        ("firstName=claire", []),
        ("firstName=Claire", [100]),
        ("dtContractStart=2021-09-01", [102]),
        ("dtContractStart=2021-09-01T00:00:00", [102]),
        ("dtContractStart=between,2019-03-01,2021-09-01", [100, 102]),
        ("dtContractStart=between,2019-03-02,2021-08-31", []),
        ("dtContractStart=between,2018-01-01,2019-12-31&formerEmployees=true", [100, 101]),
        ("dtContractStart=since,2021-09-01", [102]),
        ("dtContractStart=until,2019-03-01", [100]),
        ("dtContractEnd=until,2024-06-30", [101]),
        ("login=claire.martin@acme.fr", [100]),
        ("lastName=like,DUP", [102]),
        ("id=notequal,100", [102]),
        ("departmentId=10&managerId=100", [102]),
        ("managerId=null", [100]),
        ("id=100,102", [100, 102]),
        ("departmentId=11", []),
        ("departmentId=11&formerEmployees=true", [101]),
        ("unknownParam=1&orderBy=id,desc", [100, 102]),
    ],
)
async def test_user_filters(client: httpx.AsyncClient, query: str, expected: list[int]) -> None:
    assert await user_ids(client, query) == expected


@pytest.mark.parametrize("query", ["dtContractStart=between,2019-03-01", "dtContractStart=since,soon", "id=since,x"])
async def test_bad_filter_operands_are_400(client: httpx.AsyncClient, query: str) -> None:
    response = await client.get(f"{USERS}?{query}", headers=AUTH)
    assert response.status_code == 400


async def test_get_one_user(client: httpx.AsyncClient) -> None:
    response = await client.get(f"{USERS}/101?fields=id,lastName,dtContractEnd", headers=AUTH)
    assert response.json() == {"data": {"id": 101, "lastName": "Durand", "dtContractEnd": "2024-06-30T00:00:00"}}
    assert (await client.get(f"{USERS}/999", headers=AUTH)).status_code == 404


# --- creating users -------------------------------------------------------------------------------


async def test_create_user_with_contract(client: httpx.AsyncClient) -> None:
    response = await client.post(f"{USERS}?contract=true", headers=AUTH, json=new_hire(jobTitle="Backend"))
    assert response.status_code == 201
    user = response.json()["data"]
    assert user["id"] == 103
    assert user["dtContractStart"] == "2026-12-01T00:00:00"
    assert user["manager"] == {"id": 100, "name": "Claire Martin", "url": "http://sandbox/demo/api/v3/users/100"}
    assert (await sandbox_user(client, 103))["jobTitle"] == "Backend"
    assert await user_ids(client, "login=zoe.muller@acme.fr") == [103]
    assert await user_ids(client, "login=like,ZOE.MULLER@") == [103]


async def test_create_accepts_a_wrapped_body_and_no_contract(client: httpx.AsyncClient) -> None:
    body = {"data": new_hire(dtContractStart=None, managerId=None)}
    response = await client.post(f"{USERS}?contract=false", headers=AUTH, json=body)
    assert response.status_code == 201
    assert response.json()["data"]["managerId"] is None


@pytest.mark.parametrize(
    "field", ["firstName", "lastName", "login", "legalEntityId", "departmentId", "rolePrincipalId", "dtContractStart"]
)
async def test_create_requires_fields(client: httpx.AsyncClient, field: str) -> None:
    body = new_hire()
    del body[field]
    response = await client.post(f"{USERS}?contract=true", headers=AUTH, json=body)
    assert response.status_code == 400
    assert response.json()["Message"].endswith(f"{field} is required")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"legalEntityId": 3}, "establishment 3 (Acme Lyon) is archived"),
        ({"legalEntityId": 9}, "legalEntityId 9 is not an existing establishment"),
        ({"departmentId": 99}, "departmentId 99 is not an existing department"),
        ({"managerId": 101}, "manager 101 is not an active employee"),
        ({"managerId": 555}, "managerId 555 is not an existing user"),
        ({"login": "Jean.Dupont@ACME.fr"}, "The login 'Jean.Dupont@ACME.fr' is already in use"),
        ({"login": "paul.durand@acme.fr"}, "The login 'paul.durand@acme.fr' is already in use"),
        ({"dtContractStart": "01/12/2026"}, "dtContractStart"),
    ],
)
async def test_create_refuses_bad_references(
    client: httpx.AsyncClient, overrides: dict[str, Any], message: str
) -> None:
    response = await client.post(f"{USERS}?contract=true", headers=AUTH, json=new_hire(**overrides))
    assert response.status_code == 400
    assert message in response.json()["Message"]
    assert len((await client.get(f"{CONTROL}/users")).json()["items"]) == 3


async def test_create_refuses_a_non_json_body(client: httpx.AsyncClient) -> None:
    response = await client.post(f"{USERS}?contract=true", headers=AUTH, content=b"{not json")
    assert response.status_code == 400


# --- updating users and extended data -------------------------------------------------------------


async def test_update_fields(client: httpx.AsyncClient) -> None:
    response = await client.put(f"{USERS}/102", headers=AUTH, json={"jobTitle": "Lead", "departmentId": 12})
    assert response.status_code == 200
    assert response.json()["data"]["department"]["name"] == "People"
    user = await sandbox_user(client, 102)
    assert (user["jobTitle"], user["departmentId"], user["firstName"]) == ("Lead", 12, "Jean")


async def test_update_refuses_unknown_user_and_bad_department(client: httpx.AsyncClient) -> None:
    assert (await client.put(f"{USERS}/999", headers=AUTH, json={"jobTitle": "x"})).status_code == 404
    response = await client.put(f"{USERS}/102", headers=AUTH, json={"departmentId": 99})
    assert response.status_code == 400
    assert (await sandbox_user(client, 102))["departmentId"] == 10


async def test_single_extended_value_create_update_delete(client: httpx.AsyncClient) -> None:
    await client.put(f"{USERS}/102", headers=AUTH, json={"e_quote": {"value": "99 bugs"}})
    created = (await sandbox_user(client, 102))["extendedData"]["e_quote"]
    assert created["value"] == "99 bugs"
    await client.put(f"{USERS}/102", headers=AUTH, json={"e_quote": {"id": created["id"], "value": "98 bugs"}})
    assert (await sandbox_user(client, 102))["extendedData"]["e_quote"] == {"id": created["id"], "value": "98 bugs"}
    await client.put(f"{USERS}/102", headers=AUTH, json={"e_quote": {"id": created["id"], "value": None}})
    assert "e_quote" not in (await sandbox_user(client, 102))["extendedData"]


async def test_extended_data_written_inside_extended_data_is_ignored(client: httpx.AsyncClient) -> None:
    body = {"extendedData": {"e_quote": {"value": "lost"}}}
    assert (await client.put(f"{USERS}/102", headers=AUTH, json=body)).status_code == 200
    assert (await sandbox_user(client, 102))["extendedData"] == {}


async def test_multi_value_rows_append_update_delete(client: httpx.AsyncClient) -> None:
    gdpr = {"e_title": {"value": "GDPR"}, "e_progress": {"value": "50%"}}
    security = {"e_title": {"value": "Security"}}
    await client.put(
        f"{USERS}/102", headers=AUTH, json={"e_formation": [{"id": 0, "value": gdpr}, {"value": security}]}
    )
    rows = (await sandbox_user(client, 102))["extendedData"]["e_formation"]
    assert [row["value"]["e_title"]["value"] for row in rows] == ["GDPR", "Security"]
    first, second = rows[0]["id"], rows[1]["id"]

    done = {**gdpr, "e_progress": {"value": "100%"}}
    body = {"e_formation": [{"id": first, "value": done}, {"id": second, "value": None}]}
    await client.put(f"{USERS}/102", headers=AUTH, json=body)
    assert (await sandbox_user(client, 102))["extendedData"]["e_formation"] == [{"id": first, "value": done}]


async def test_multi_value_unknown_row_id_is_400(client: httpx.AsyncClient) -> None:
    body = {"e_formation": [{"id": 424242, "value": {"e_title": {"value": "x"}}}]}
    assert (await client.put(f"{USERS}/102", headers=AUTH, json=body)).status_code == 400


# --- v4 structure and retired v3 endpoints --------------------------------------------------------


async def test_establishments_hide_archived_and_carry_legal_unit(client: httpx.AsyncClient) -> None:
    response = await client.get(f"{STRUCTURE}/establishments", headers=AUTH)
    assert response.json() == {
        "items": [
            {
                "id": 1,
                "name": "Acme Paris",
                "legalUnitId": 1,
                "code": "PAR",
                "timezoneId": "Europe/Paris",
                "isArchived": False,
                "legalUnit": {"id": 1, "name": "Acme SAS"},
            },
            {
                "id": 2,
                "name": "Acme Berlin",
                "legalUnitId": 1,
                "code": "BER",
                "timezoneId": "Europe/Berlin",
                "isArchived": False,
                "legalUnit": {"id": 1, "name": "Acme SAS"},
            },
        ]
    }


@pytest.mark.parametrize(("archived", "expected"), [("true,false", [1, 2, 3]), ("true", [3]), ("false", [1, 2])])
async def test_establishments_archived_filter(client: httpx.AsyncClient, archived: str, expected: list[int]) -> None:
    response = await client.get(f"{STRUCTURE}/establishments?isArchived={archived}", headers=AUTH)
    assert [item["id"] for item in response.json()["items"]] == expected


async def test_structure_cursor_paging(client: httpx.AsyncClient) -> None:
    url = f"{STRUCTURE}/departments?limit=2&fields.root=count,prev,next"
    first = (await client.get(url, headers=AUTH)).json()
    assert [item["id"] for item in first["items"]] == [10, 11]
    assert (first["count"], first["prev"]) == (3, None)
    second = (await client.get(f"{url}&page={first['next']}", headers=AUTH)).json()
    assert [item["id"] for item in second["items"]] == [12]
    assert second["next"] is None
    back = (await client.get(f"{url}&page={second['prev']}", headers=AUTH)).json()
    assert [item["id"] for item in back["items"]] == [10, 11]


async def test_structure_integer_pages_and_bare_envelope(client: httpx.AsyncClient) -> None:
    response = await client.get(f"{STRUCTURE}/departments?limit=2&page=2", headers=AUTH)
    assert response.json() == {
        "items": [
            {
                "id": 12,
                "name": "People",
                "code": "PEOPLE",
                "parentId": None,
                "hierarchy": "/12/",
                "isActive": True,
                "headId": None,
                "level": 1,
            }
        ]
    }


@pytest.mark.parametrize("query", ["limit=101", "limit=0", "page=0", "page=not-a-cursor!"])
async def test_structure_bad_paging_is_400(client: httpx.AsyncClient, query: str) -> None:
    assert (await client.get(f"{STRUCTURE}/establishments?{query}", headers=AUTH)).status_code == 400


async def test_structure_items_and_legal_units(client: httpx.AsyncClient) -> None:
    department = (await client.get(f"{STRUCTURE}/departments/11", headers=AUTH)).json()
    assert (department["name"], department["headId"]) == ("Sales", 101)
    archived = (await client.get(f"{STRUCTURE}/establishments/3", headers=AUTH)).json()
    assert archived["isArchived"] is True
    assert (await client.get(f"{STRUCTURE}/establishments/9", headers=AUTH)).status_code == 404
    units = (await client.get(f"{STRUCTURE}/legal-units", headers=AUTH)).json()
    assert [unit["name"] for unit in units["items"]] == ["Acme SAS"]


@pytest.mark.parametrize("path", ["/api/v3/departments", "/api/v3/legalentities", "/api/v3/departments/tree"])
async def test_retired_v3_endpoints_are_410(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(f"/{DEMO_ACCOUNT}{path}", headers=AUTH)
    assert response.status_code == 410
    assert response.json() == {"Message": "This endpoint was retired in September 2026"}


# --- rate limit -----------------------------------------------------------------------------------


async def test_rate_limit_window(make_client: ClientFactory) -> None:
    client = await make_client(window_seconds=0.5, requests_per_window=3)
    assert (await client.get(USERS)).status_code == 401  # refused for auth: not counted
    statuses = [(await client.get(USERS, headers=AUTH)).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    refused = await client.get(USERS, headers=AUTH)
    assert refused.headers["Retry-After"] == "1"
    await asyncio.sleep(0.6)
    assert (await client.get(USERS, headers=AUTH)).status_code == 200

    calls = (await client.get(f"{CONTROL}/calls")).json()
    assert calls["count_by_status"] == {"401": 1, "200": 4, "429": 2}
    assert [call["status"] for call in calls["items"]] == [401, 200, 200, 200, 429, 429, 200]
    assert calls["items"][1]["method"] == "GET" and calls["items"][1]["path"] == "/api/v3/users"


async def test_seed_sets_the_window_and_calls_can_be_cleared(client: httpx.AsyncClient) -> None:
    seed = {**demo_seed_payload(), "window_seconds": 60, "requests_per_window": 1}
    await client.put(CONTROL, json=seed)
    assert [(await client.get(USERS, headers=AUTH)).status_code for _ in range(2)] == [200, 429]
    assert (await client.delete(f"{CONTROL}/calls")).status_code == 204
    assert (await client.get(f"{CONTROL}/calls")).json() == {"items": [], "count_by_status": {}}


# --- faults ---------------------------------------------------------------------------------------


async def test_fault_answers_instead_and_is_not_counted(make_client: ClientFactory) -> None:
    client = await make_client(requests_per_window=2)
    fault = {"status": 503, "count": 2, "retry_after": 7, "match": "GET /api/v3/users"}
    assert (await client.post(f"{CONTROL}/faults", json=fault)).status_code == 204
    first, second = await client.get(USERS, headers=AUTH), await client.get(USERS, headers=AUTH)
    assert (first.status_code, first.headers["Retry-After"], second.status_code) == (503, "7", 503)
    statuses = [(await client.get(USERS, headers=AUTH)).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]


async def test_fault_matches_method_and_path_suffix(client: httpx.AsyncClient) -> None:
    await client.post(f"{CONTROL}/faults", json=[{"status": 500, "match": "POST /api/v3/users"}])
    assert (await client.get(USERS, headers=AUTH)).status_code == 200
    response = await client.post(f"{USERS}?contract=true", headers=AUTH, json=new_hire())
    assert response.status_code == 500
    assert len((await client.get(f"{CONTROL}/users")).json()["items"]) == 3
    assert (await client.post(f"{USERS}?contract=true", headers=AUTH, json=new_hire())).status_code == 201


async def test_fault_after_performs_the_call_then_loses_the_answer(client: httpx.AsyncClient) -> None:
    fault = {"status": 408, "match": "POST /api/v3/users", "after": True, "delay_seconds": 0.01}
    await client.post(f"{CONTROL}/faults", json=fault)
    response = await client.post(f"{USERS}?contract=true", headers=AUTH, json=new_hire())
    assert response.status_code == 408
    assert (await sandbox_user(client, 103))["login"] == "zoe.muller@acme.fr"
    retried = await client.post(f"{USERS}?contract=true", headers=AUTH, json=new_hire())
    assert retried.json()["Message"] == "The login 'zoe.muller@acme.fr' is already in use"


async def test_delay_only_fault_serves_the_real_answer(client: httpx.AsyncClient) -> None:
    await client.post(f"{CONTROL}/faults", json={"delay_seconds": 0.01})
    response = await client.get(USERS, headers=AUTH)
    assert response.status_code == 200
    assert len(response.json()["data"]["items"]) == 2


async def test_faults_can_be_cleared(client: httpx.AsyncClient) -> None:
    await client.post(f"{CONTROL}/faults", json={"status": 500, "count": 5})
    assert (await client.delete(f"{CONTROL}/faults")).status_code == 204
    assert (await client.get(USERS, headers=AUTH)).status_code == 200


# --- control API ----------------------------------------------------------------------------------


async def test_control_health_and_unknown_account(client: httpx.AsyncClient) -> None:
    assert (await client.get("/_sandbox/healthz")).status_code == 200
    assert (await client.get("/_sandbox/lucca/accounts/nobody/calls")).status_code == 404
    assert (await client.post("/_sandbox/lucca/accounts/nobody/faults", json={"status": 500})).status_code == 404


async def test_control_users_are_full_and_not_logged(client: httpx.AsyncClient) -> None:
    users = (await client.get(f"{CONTROL}/users")).json()["items"]
    assert [user["id"] for user in users] == [100, 101, 102]
    assert users[2]["managerId"] == 100 and users[2]["extendedData"] == {}
    assert (await client.get(f"{CONTROL}/calls")).json()["items"] == []


async def test_seed_is_validated(client: httpx.AsyncClient) -> None:
    response = await client.put(CONTROL, json={"api_key": "k", "users": [{"id": 1}]})
    assert response.status_code == 422


async def test_replacing_an_account_resets_it(client: httpx.AsyncClient) -> None:
    await client.post(f"{USERS}?contract=true", headers=AUTH, json=new_hire())
    await client.post(f"{CONTROL}/faults", json={"status": 500})
    await client.put(CONTROL, json=demo_seed_payload())
    assert await user_ids(client, "formerEmployees=true") == [100, 101, 102]
    assert (await client.get(f"{CONTROL}/calls")).json()["count_by_status"] == {"200": 1}
