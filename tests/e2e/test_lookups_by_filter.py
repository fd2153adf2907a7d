"""A hire asks Lucca for the few users it concerns, by filter: at most 5 calls at 5,000 employees (finding 8).

Counted from the sandbox's call log, once the structure (establishments, departments) is in the shared cache.
"""

from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

from app.sandbox.demo import directory_seed_payload
from tests.e2e.conftest import WEBHOOK, drain_queue, run_of
from tests.e2e.test_one_person import queue_import, taleez_tenant
from tests.factories import TenantHandle, add_softgarden, hire_body
from tests.sandbox_server import LuccaAccount, PartnerAccount, SandboxServer

pytestmark = pytest.mark.usefixtures("clean_state")
EMPLOYEES = 5000
MAX_CALLS = 5
LOOKUP_FILTERS = {"id", "personalEmail", "dtContractStart", "login", "mail"}


@pytest.fixture
def big_lucca(sandbox: SandboxServer) -> LuccaAccount:
    return sandbox.new_lucca_account(**directory_seed_payload(EMPLOYEES))


@pytest.fixture
def taleez(sandbox: SandboxServer) -> PartnerAccount:
    return sandbox.new_taleez_account()


async def calls_of(lucca: LuccaAccount, client: httpx.AsyncClient, tenant: TenantHandle, post: Any) -> Any:
    """Run one hire (`post` queues it); returns its run and the Lucca calls it made."""
    before = len(lucca.calls()["items"])
    run_id = await post()
    await drain_queue()
    return await run_of(client, tenant, run_id), lucca.calls()["items"][before:]


def users_queries(calls: list[dict[str, Any]]) -> list[dict[str, list[str]]]:
    return [parse_qs(call["query"]) for call in calls if call["method"] == "GET" and call["path"] == "/api/v3/users"]


async def test_new_hire_namesake_and_rehires_take_at_most_5_calls_at_5000_employees(
    client: httpx.AsyncClient, big_lucca: LuccaAccount, taleez: PartnerAccount
) -> None:
    tenant = await add_softgarden(client, await taleez_tenant(client, big_lucca, taleez, "big"))

    def webhook(**changes: Any) -> Any:
        async def post() -> str:
            answer = await client.post(WEBHOOK, json=hire_body(**changes), headers=tenant.webhook_auth)
            assert answer.status_code == 202, answer.text
            run_id: str = answer.json()["run_id"]
            return run_id

        return post

    def taleez_import(start: str) -> Any:
        candidate = {"id": 77, "firstName": "Ada", "lastName": "Adams"}  # no e-mail: names and start date decide
        return lambda: queue_import(client, tenant, {"candidate": candidate, "start_date": start})

    # The first hire fills the structure cache.
    warm, _ = await calls_of(big_lucca, client, tenant, webhook(applicationId="warm", email="warm@perso.example"))
    assert warm["counts"]["created"] == 1
    cases = {
        "new hire": (webhook(applicationId="new", firstName="Quentin", lastName="Zhou", email="q@perso.example"),
                     "created", "quentin.zhou@acme.fr"),
        # Ada Adams is 1000, 3000 (ada.adams2@) and 5000 (ada.adams3@): a namesake takes the next suffix.
        "namesake": (webhook(applicationId="namesake", firstName="Ada", lastName="Adams", email="ada@new.example"),
                     "created", "ada.adams4@acme.fr"),
        "re-hire (same personal e-mail)": (webhook(applicationId="again", firstName="Ada", lastName="Adams",
                                                   email="ADA.ADAMS.0@perso.example"), "linked", "ada.adams@acme.fr"),
        "namesake by names, no e-mail": (taleez_import("2027-01-04"), "created", "ada.adams5@acme.fr"),
        "re-import (stored link)": (taleez_import("2027-02-01"), "linked", "ada.adams5@acme.fr"),
    }  # fmt: skip
    counted = {}
    for name, (post, outcome, login) in cases.items():
        run, calls = await calls_of(big_lucca, client, tenant, post)
        assert run["status"] == "succeeded" and run["counts"][outcome] == 1, (name, run)
        counted[name] = len(calls)
        users = {user["id"]: user for user in big_lucca.users()}
        assert any(user["login"] == login for user in users.values()), name
        # Every users query names what it looks for: no answer grows with the directory.
        assert all(LOOKUP_FILTERS & set(query) for query in users_queries(calls)), (name, calls)
    assert all(count <= MAX_CALLS for count in counted.values()), counted
    assert len(big_lucca.users()) == EMPLOYEES + 3 + 4
