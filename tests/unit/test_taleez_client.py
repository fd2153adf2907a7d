"""TaleezClient against respx: header, candidate shape, final refusals and retried outages."""

from collections.abc import AsyncIterator

import httpx
import pytest
import respx

from app.clients.http import RetryPolicy
from app.clients.taleez import TaleezAuthFailed, TaleezClient, TaleezRejected, TaleezUnavailable

BASE = "https://api.taleez.test/0"
FAST = RetryPolicy(base_seconds=0.01, max_seconds=0.02, in_call_seconds=0.1)
CANDIDATE = {"id": 4411, "firstName": "Inès", "lastName": "Dupré", "mail": "ines@perso.fr", "unitId": 3}


@pytest.fixture
async def client() -> AsyncIterator[TaleezClient]:
    async with httpx.AsyncClient() as http:
        yield TaleezClient(http, BASE, "taleez-secret-value", retry=FAST)


@respx.mock
async def test_reads_a_candidate_with_the_secret_header(client: TaleezClient) -> None:
    route = respx.get(f"{BASE}/candidates/4411").mock(return_value=httpx.Response(200, json=CANDIDATE))
    candidate = await client.get_candidate(4411)
    assert (candidate.first_name, candidate.last_name, candidate.mail, candidate.phone) == (
        "Inès", "Dupré", "ines@perso.fr", None,
    )  # fmt: skip
    assert route.calls.last.request.headers["X-taleez-api-secret"] == "taleez-secret-value"


@respx.mock
async def test_unknown_candidate_and_refused_secret_are_final(client: TaleezClient) -> None:
    missing = respx.get(f"{BASE}/candidates/9").mock(return_value=httpx.Response(404, json={"message": "nope"}))
    with pytest.raises(TaleezRejected, match="no candidate 9"):
        await client.get_candidate(9)
    assert missing.call_count == 1
    refused = respx.get(f"{BASE}/candidates/4411").mock(
        return_value=httpx.Response(401, json={"message": "bad secret taleez-secret-value"})
    )
    with pytest.raises(TaleezAuthFailed) as caught:
        await client.get_candidate(4411)
    assert refused.call_count == 1
    assert "taleez-secret-value" not in caught.value.message


@respx.mock
async def test_outages_are_retried_then_reported_as_unavailable(client: TaleezClient) -> None:
    route = respx.get(f"{BASE}/candidates/4411").mock(
        side_effect=[httpx.Response(503), httpx.ReadTimeout("slow"), httpx.Response(200, json=CANDIDATE)]
    )
    assert (await client.get_candidate(4411)).id == 4411
    assert route.call_count == 3
    respx.get(f"{BASE}/candidates/4412").mock(return_value=httpx.Response(502))
    with pytest.raises(TaleezUnavailable):
        await client.get_candidate(4412)
