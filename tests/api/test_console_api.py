"""The API pieces of the console (contract sections 4, 5, 6 and 12), over TCP: the operator's tenant list, console
links, who is signed in, the search by person, retry-failed and Check connection; and the page's own headers."""

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import asyncpg
import httpx
import pytest

from app.sandbox.sftp import SftpSandbox
from tests.e2e.conftest import WEBHOOK, drain_queue, run_of
from tests.factories import ADMIN, SOFTGARDEN_SETTINGS, TenantHandle, add_softgarden, create_tenant, hire_body
from tests.live_server import LiveServer
from tests.sandbox_server import SandboxServer

pytestmark = pytest.mark.usefixtures("clean_state")
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


async def console_link(client: httpx.AsyncClient, slug: str, auth: dict[str, str], **body: Any) -> httpx.Response:
    return await client.post(f"/api/v1/tenants/{slug}/console-links", json=body or None, headers=auth)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def token_of(url: str) -> str:
    fragment = urlsplit(url).fragment
    assert fragment.startswith("token=")
    return fragment.removeprefix("token=")


async def sql(database_url: str, statement: str, *args: Any) -> Any:
    connection = await asyncpg.connect(database_url.replace("+asyncpg", ""))
    try:
        return await connection.fetch(statement, *args)
    finally:
        await connection.close()


# The operator's tenant list (contract section 4)


async def test_the_operator_pages_through_tenants_by_slug(client: httpx.AsyncClient) -> None:
    for slug in ("delta", "alpha", "charlie", "bravo", "echo"):
        await create_tenant(client, slug)
    first = await client.get("/api/v1/tenants", params={"limit": 2}, headers=ADMIN)
    assert first.status_code == 200
    assert [item["slug"] for item in first.json()["items"]] == ["alpha", "bravo"]
    assert first.json()["next"] == "bravo"
    second = await client.get("/api/v1/tenants", params={"limit": 2, "after": "bravo"}, headers=ADMIN)
    assert [item["slug"] for item in second.json()["items"]] == ["charlie", "delta"]
    last = await client.get("/api/v1/tenants", params={"limit": 2, "after": second.json()["next"]}, headers=ADMIN)
    assert last.json() == {"items": [last.json()["items"][0]], "next": None}
    assert last.json()["items"][0]["slug"] == "echo" and 'api_key"' not in last.text
    whole = await client.get("/api/v1/tenants", headers=ADMIN)
    assert len(whole.json()["items"]) == 5 and whole.json()["next"] is None


async def test_only_the_operator_lists_tenants(client: httpx.AsyncClient) -> None:
    tenant = await create_tenant(client, "acme")
    assert (await client.get("/api/v1/tenants", headers=tenant.auth)).status_code == 403
    assert (await client.get("/api/v1/tenants")).status_code == 401
    for params in ({"limit": 0}, {"limit": 501}, {"after": "Not A Slug"}):
        answer = await client.get("/api/v1/tenants", params=params, headers=ADMIN)
        assert answer.status_code == 422 and answer.json()["detail"][0]["loc"][0] == "query", params


# Console links (contract section 12)


async def test_a_console_link_acts_as_its_tenant_key_only(client: httpx.AsyncClient, live_api: LiveServer) -> None:
    acme = await create_tenant(client, "acme")
    await create_tenant(client, "other")
    made = await console_link(client, "acme", ADMIN)
    assert made.status_code == 201
    url = made.json()["url"]
    assert url.startswith(f"{live_api.url}/console#token=")
    expires_at = datetime.fromisoformat(made.json()["expires_at"])
    assert timedelta(minutes=59) < expires_at - datetime.now(expires_at.tzinfo) <= timedelta(hours=1)
    token = bearer(token_of(url))
    assert (await client.get("/api/v1/tenants/acme", headers=token)).status_code == 200
    assert (await client.get("/api/v1/tenants/acme/runs", headers=token)).status_code == 200
    # Another tenant looks as if it did not exist; operator routes are refused, as for the tenant's key.
    for path in ("/api/v1/tenants/other", "/api/v1/tenants/other/runs"):
        assert (await client.get(path, headers=token)).status_code == 404
    assert (await client.get("/api/v1/tenants", headers=token)).status_code == 403
    assert (await client.patch("/api/v1/tenants/acme", json={"name": "X"}, headers=token)).status_code == 403
    assert (await client.delete("/api/v1/tenants/acme", headers=token)).status_code == 403
    # A tenant key makes links for its own tenant; a console token makes none (a link never outlives its expiry).
    assert (await console_link(client, "acme", acme.auth)).status_code == 201
    assert (await console_link(client, "other", acme.auth)).status_code == 404
    refused = await console_link(client, "acme", token)
    assert refused.status_code == 403 and "console link" in refused.json()["detail"]
    assert token_of(url) not in live_api.log()


async def test_a_console_link_lives_as_long_as_asked(client: httpx.AsyncClient) -> None:
    await create_tenant(client, "acme")
    made = await console_link(client, "acme", ADMIN, ttl_seconds=86_400)
    assert made.status_code == 201
    expires_at = datetime.fromisoformat(made.json()["expires_at"])
    assert timedelta(hours=23) < expires_at - datetime.now(expires_at.tzinfo) <= timedelta(days=1)
    # No body at all is the default hour.
    bare = await client.post("/api/v1/tenants/acme/console-links", headers=ADMIN)
    assert bare.status_code == 201


async def test_bad_lifetimes_are_refused_and_nothing_is_stored(
    client: httpx.AsyncClient, migrated_database: str
) -> None:
    await create_tenant(client, "acme")
    for ttl in (0, 86_401, "3600", 1.5, None, True):
        answer = await console_link(client, "acme", ADMIN, ttl_seconds=ttl)
        assert answer.status_code == 422, (ttl, answer.text)
        assert answer.json()["detail"][0]["loc"] == ["body", "ttl_seconds"]
    unknown = await console_link(client, "acme", ADMIN, ttl=60)
    assert unknown.status_code == 422 and unknown.json()["detail"][0]["loc"] == ["body", "ttl"]
    assert (await sql(migrated_database, "SELECT count(*) FROM console_links"))[0][0] == 0
    assert (await console_link(client, "acme", {}, ttl_seconds=60)).status_code == 401


async def test_an_expired_link_says_so_and_a_wrong_one_reveals_nothing(
    client: httpx.AsyncClient, migrated_database: str
) -> None:
    await create_tenant(client, "acme")
    token = token_of((await console_link(client, "acme", ADMIN)).json()["url"])
    # Time passes: the link's expiry is moved into the past.
    await sql(migrated_database, "UPDATE console_links SET expires_at = now() - interval '1 second'")
    expired = await client.get("/api/v1/tenants/acme", headers=bearer(token))
    assert expired.status_code == 401 and "expired" in expired.json()["detail"]
    assert "acme" not in expired.text
    for wrong in (token[:-2] + "xx", "lct_console_nope", "lct_nope"):
        answer = await client.get("/api/v1/tenants/acme", headers=bearer(wrong))
        assert answer.status_code == 401 and answer.json() == {"detail": "Missing or invalid credentials."}


async def test_links_are_stored_as_hashes_and_go_with_their_tenant(
    client: httpx.AsyncClient, migrated_database: str
) -> None:
    await create_tenant(client, "acme")
    token = token_of((await console_link(client, "acme", ADMIN)).json()["url"])
    assert token not in str(await sql(migrated_database, "SELECT * FROM console_links"))
    assert (await client.delete("/api/v1/tenants/acme", headers=ADMIN)).status_code == 204
    assert (await client.get("/api/v1/me", headers=bearer(token))).status_code == 401
    await drain_queue()  # the tenant's rows go in the background
    assert (await sql(migrated_database, "SELECT count(*) FROM console_links"))[0][0] == 0


async def test_me_says_who_is_signed_in(client: httpx.AsyncClient) -> None:
    acme = await create_tenant(client, "acme")
    operator = await client.get("/api/v1/me", headers=ADMIN)
    assert operator.json() == {"role": "operator", "tenant": None, "expires_at": None}
    key = (await client.get("/api/v1/me", headers=acme.auth)).json()
    assert (key["role"], key["tenant"]["slug"], key["expires_at"]) == ("tenant", "acme", None)
    made = (await console_link(client, "acme", ADMIN, ttl_seconds=600)).json()
    link = (await client.get("/api/v1/me", headers=bearer(token_of(made["url"])))).json()
    assert (link["role"], link["tenant"]["slug"]) == ("tenant", "acme")
    assert datetime.fromisoformat(link["expires_at"]) == datetime.fromisoformat(made["expires_at"])
    assert (await client.get("/api/v1/me")).status_code == 401


# Listing and ending console links (contract section 2)


async def links_of(client: httpx.AsyncClient, auth: dict[str, str], slug: str = "acme") -> list[dict[str, Any]]:
    answer = await client.get(f"/api/v1/tenants/{slug}/console-links", headers=auth)
    assert answer.status_code == 200, answer.text
    items: list[dict[str, Any]] = answer.json()["items"]
    return items


async def test_live_links_are_listed_without_their_tokens(client: httpx.AsyncClient, migrated_database: str) -> None:
    acme = await create_tenant(client, "acme")
    by_operator = (await console_link(client, "acme", ADMIN)).json()
    by_key = (await console_link(client, "acme", acme.auth, ttl_seconds=600)).json()
    expired = (await console_link(client, "acme", ADMIN)).json()
    await sql(migrated_database, "UPDATE console_links SET expires_at = now() - interval '1 second' WHERE id = $1",
              uuid.UUID(expired["id"]))  # fmt: skip
    listed = await links_of(client, acme.auth)
    assert [(link["id"], link["minted_by"]) for link in listed] == [
        (by_key["id"], "tenant_key"),
        (by_operator["id"], "operator"),
    ]
    assert listed[0]["expires_at"] == by_key["expires_at"] and set(listed[0]) == {"id", "created_at", "expires_at",
                                                                                   "minted_by"}  # fmt: skip
    # A console token may read them (it acts as the tenant key); nothing that opens a link is shown.
    answer = await client.get("/api/v1/tenants/acme/console-links", headers=bearer(token_of(by_key["url"])))
    hashes = [row[0] for row in await sql(migrated_database, "SELECT token_hash FROM console_links")]
    for made in (by_operator, by_key):
        assert token_of(made["url"]) not in answer.text
    assert not any(token_hash in answer.text for token_hash in hashes)
    other = await create_tenant(client, "other")
    assert await links_of(client, other.auth, "other") == []
    assert (await client.get("/api/v1/tenants/acme/console-links", headers=other.auth)).status_code == 404


async def test_a_link_ended_is_refused_at_once(client: httpx.AsyncClient) -> None:
    acme = await create_tenant(client, "acme")
    first, second = [(await console_link(client, "acme", ADMIN)).json() for _ in range(2)]
    first_token, second_token = bearer(token_of(first["url"])), bearer(token_of(second["url"]))
    ended = await client.delete(f"/api/v1/tenants/acme/console-links/{first['id']}", headers=acme.auth)
    assert ended.status_code == 204
    assert (await client.get("/api/v1/me", headers=first_token)).status_code == 401
    assert (await client.get("/api/v1/me", headers=second_token)).status_code == 200
    assert [link["id"] for link in await links_of(client, ADMIN)] == [second["id"]]
    # Ended, unknown, not an id, or another tenant's: 404, and nothing else ends.
    other = await create_tenant(client, "other")
    for path, auth in ((f"acme/console-links/{first['id']}", ADMIN), (f"acme/console-links/{uuid.uuid4()}", ADMIN),
                       ("acme/console-links/not-an-id", ADMIN), (f"acme/console-links/{second['id']}", other.auth),
                       (f"other/console-links/{second['id']}", other.auth)):  # fmt: skip
        assert (await client.delete(f"/api/v1/tenants/{path}", headers=auth)).status_code == 404, path
    assert (await client.get("/api/v1/me", headers=second_token)).status_code == 200
    assert (await client.delete("/api/v1/tenants/acme/console-links", headers=ADMIN)).status_code == 204
    assert (await client.get("/api/v1/me", headers=second_token)).status_code == 401
    assert await links_of(client, acme.auth) == []


async def test_a_console_link_ends_no_link(client: httpx.AsyncClient) -> None:
    acme = await create_tenant(client, "acme")
    made = (await console_link(client, "acme", acme.auth)).json()
    token = bearer(token_of(made["url"]))
    for method, path in (("DELETE", f"/api/v1/tenants/acme/console-links/{made['id']}"),
                         ("DELETE", "/api/v1/tenants/acme/console-links"),
                         ("POST", "/api/v1/tenants/acme/console-links")):  # fmt: skip
        refused = await client.request(method, path, headers=token)
        assert refused.status_code == 403 and "console link" in refused.json()["detail"], path
    assert (await client.get("/api/v1/me", headers=token)).status_code == 200
    assert (await client.delete("/api/v1/tenants/acme/console-links", headers={})).status_code == 401


async def test_a_tenant_has_at_most_a_hundred_live_links(client: httpx.AsyncClient, migrated_database: str) -> None:
    acme = await create_tenant(client, "acme")
    await sql(
        migrated_database,
        """INSERT INTO console_links (id, tenant_id, token_hash, created_at, expires_at, minted_by)
           SELECT gen_random_uuid(), tenants.id, md5(number::text) || md5(number::text), now(), now() + interval '1 hour',
                  'operator'
           FROM tenants, generate_series(1, 99) AS number""",
    )
    assert (await console_link(client, "acme", acme.auth)).status_code == 201
    refused = await console_link(client, "acme", acme.auth)
    assert refused.status_code == 409 and "100 live console links" in refused.json()["detail"]
    assert len(await links_of(client, acme.auth)) == 100
    await sql(migrated_database, "UPDATE console_links SET expires_at = now() - interval '1 second'")
    assert (await console_link(client, "acme", acme.auth)).status_code == 201


# The console page (contract section 12)


async def test_the_page_and_its_assets_are_public_and_locked_down(client: httpx.AsyncClient) -> None:
    page = await client.get("/console")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<script src="/console/console.js"' in page.text and "<script>" not in page.text
    for path, kind in (("/console", "text/html"), ("/console/console.js", "text/javascript"),
                       ("/console/console.css", "text/css"), ("/console/icon.svg", "image/svg+xml")):  # fmt: skip
        answer = await client.get(path)
        assert answer.status_code == 200 and answer.headers["content-type"].startswith(kind), path
        assert answer.headers["content-security-policy"] == CSP
        assert answer.headers["x-frame-options"] == "DENY"
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["referrer-policy"] == "no-referrer"
    for missing in ("/console/nope.js", "/console/..%2Fmain.py", "/console/%2e%2e"):
        assert (await client.get(missing)).status_code == 404
    document = (await client.get("/openapi.json")).json()
    assert not [path for path in document["paths"] if path.startswith("/console")]


# Search by person (contract section 6)


async def test_runs_are_found_by_subject_ignoring_case_and_accents(client: httpx.AsyncClient) -> None:
    tenant = await add_softgarden(client, await create_tenant(client, "acme"))
    other = await add_softgarden(client, await create_tenant(client, "other"))
    # Statuses that are not hires are stored with their event at once (no worker needed).
    zoe = await client.post(
        WEBHOOK, json=hire_body(status="interview", email=None, firstName="Zoë", lastName="Müller"),
        headers=tenant.webhook_auth,
    )  # fmt: skip
    ines = await client.post(
        WEBHOOK, json=hire_body(status="interview", email="Ines.Dupre@Perso.fr"), headers=tenant.webhook_auth
    )
    await client.post(
        WEBHOOK, json=hire_body(status="interview", email=None, firstName="Zoë", lastName="Müller"),
        headers=other.webhook_auth,
    )  # fmt: skip

    async def found(subject: str) -> list[str]:
        answer = await client.get("/api/v1/tenants/acme/runs", params={"subject": subject}, headers=tenant.auth)
        assert answer.status_code == 200
        return [run["id"] for run in answer.json()["items"]]

    for subject in ("zoe", "ZOË", "zoe muller", "Müller", "MULLER"):
        assert await found(subject) == [zoe.json()["run_id"]], subject
    assert await found("ines.dupre@perso.fr") == [ines.json()["run_id"]]
    assert await found("dupré") == [ines.json()["run_id"]]
    for subject in ("nobody", "%", "_", "\\"):
        assert await found(subject) == [], subject
    assert len(await found("")) == 2
    refused = await client.get("/api/v1/tenants/acme/runs", params={"subject": "x" * 301}, headers=tenant.auth)
    assert refused.status_code == 422 and refused.json()["detail"][0]["loc"] == ["query", "subject"]


async def test_short_needles_find_the_same_runs_without_trigrams(client: httpx.AsyncClient) -> None:
    """Under 3 characters a needle has no trigram for the index: it is still matched exactly, run by run."""
    tenant = await add_softgarden(client, await create_tenant(client, "acme"))
    zoe = await client.post(
        WEBHOOK, json=hire_body(status="interview", email=None, firstName="Zoë", lastName="Müller"),
        headers=tenant.webhook_auth,
    )  # fmt: skip
    ines = await client.post(
        WEBHOOK, json=hire_body(status="interview", email="Ines.Dupre@Perso.fr"), headers=tenant.webhook_auth
    )

    async def found(subject: str) -> set[str]:
        answer = await client.get("/api/v1/tenants/acme/runs", params={"subject": subject}, headers=tenant.auth)
        assert answer.status_code == 200
        return {run["id"] for run in answer.json()["items"]}

    both = {zoe.json()["run_id"], ines.json()["run_id"]}
    assert await found("ZÖ") == await found("zoë") == {zoe.json()["run_id"]}
    assert await found("@") == await found("@p") == {ines.json()["run_id"]}
    assert await found("Ë") == await found("e") == both
    assert await found("qx") == await found("q") == set()


async def test_failures_of_the_last_7_days_are_counted_exactly(
    client: httpx.AsyncClient, migrated_database: str
) -> None:
    """Counted by index over every run, not from the newest 500: 600 failed Softgarden runs are 600."""
    tenant = await create_tenant(client, "acme")
    await create_tenant(client, "other")
    insert = """
        INSERT INTO runs (id, tenant_id, connector, operation, trigger, status, counts, input, state, created_at, retry_at)
        SELECT gen_random_uuid(), tenants.id, $2, 'op', 'webhook', $3, '{}', '{}', '{}', now() - $4::interval, now()
        FROM tenants, generate_series(1, $5) WHERE slug = $1
    """
    for slug, connector, status, age, count in (
        ("acme", "softgarden", "failed", timedelta(hours=1), 600),
        ("acme", "taleez", "failed", timedelta(days=6, hours=23), 3),
        ("acme", "taleez", "failed", timedelta(days=7, minutes=1), 4),  # older than the window
        ("acme", "cards", "partial", timedelta(days=1), 5),  # partial is not failed
        ("acme", "elevo", "succeeded", timedelta(days=1), 700),
        ("acme", "lucca", "failed", timedelta(days=2), 2),
        ("other", "elevo", "failed", timedelta(days=1), 9),  # another tenant's
    ):
        await sql(migrated_database, insert, slug, connector, status, age, count)
    answer = await client.get("/api/v1/tenants/acme/runs/failures", headers=tenant.auth)
    assert answer.status_code == 200
    counts = answer.json()
    assert counts["connectors"] == {"softgarden": 600, "taleez": 3, "cards": 0, "elevo": 0, "lucca": 2}
    since = datetime.fromisoformat(counts["since"])
    assert timedelta(days=7) <= datetime.now(since.tzinfo) - since < timedelta(days=7, minutes=5)
    refused = await client.get("/api/v1/tenants/acme/runs/failures", headers={"Authorization": "Bearer nope"})
    assert refused.status_code == 401


# Retry all failed since… (contract section 6)


async def failed_hires(client: httpx.AsyncClient, sandbox: SandboxServer, count: int) -> tuple[TenantHandle, list[str]]:
    """Hires whose company matches no establishment: their runs fail until an alias is set."""
    lucca = sandbox.new_lucca_account()
    tenant = await add_softgarden(client, await create_tenant(client, "acme", lucca.base_url, api_key=lucca.api_key))
    run_ids = []
    for number in range(count):
        body = hire_body(applicationId=f"app-{number}", company="Acme Roma", email=f"person{number}@perso.fr")
        run_ids.append((await client.post(WEBHOOK, json=body, headers=tenant.webhook_auth)).json()["run_id"])
        await drain_queue()  # one at a time, so that each has its own creation time
    return tenant, run_ids


async def retry_failed(client: httpx.AsyncClient, tenant: TenantHandle, **body: Any) -> httpx.Response:
    return await client.post(f"/api/v1/tenants/{tenant.slug}/runs/retry-failed", json=body, headers=tenant.auth)


async def test_retry_failed_retries_each_failed_run_of_the_window_once(
    client: httpx.AsyncClient, sandbox: SandboxServer
) -> None:
    tenant, (before, first, second) = await failed_hires(client, sandbox, 3)
    since = (await run_of(client, tenant, first))["created_at"]
    accepted = await retry_failed(client, tenant, since=since)
    assert accepted.status_code == 202
    retries = accepted.json()["run_ids"]
    assert [(await run_of(client, tenant, run_id))["retry_of"] for run_id in retries] == [first, second]
    assert (await run_of(client, tenant, before))["retried_by"] is None
    # Their retries are queued: nothing more to retry in that window.
    assert (await retry_failed(client, tenant, since=since)).json() == {"run_ids": []}
    single = await client.post(f"/api/v1/tenants/acme/runs/{first}/retry", headers=tenant.auth)
    assert single.status_code == 409 and retries[0] in single.json()["detail"]

    await drain_queue()  # still no alias: the retries fail, so the work may be retried again, once
    again = (await retry_failed(client, tenant, since=since)).json()["run_ids"]
    assert len(again) == 2
    assert {(await run_of(client, tenant, run_id))["retry_of"] for run_id in again} <= {first, second, *retries}
    path = "/api/v1/tenants/acme/connectors/softgarden"
    settings = {**SOFTGARDEN_SETTINGS, "establishment_aliases": {"Acme Roma": 1}}
    assert (await client.put(path, json={"settings": settings}, headers=tenant.auth)).status_code == 200
    await drain_queue()
    assert {(await run_of(client, tenant, run_id))["status"] for run_id in again} == {"succeeded"}
    # Succeeded retries: their runs are done; only the run before the window is left.
    assert (await retry_failed(client, tenant, since=since)).json() == {"run_ids": []}
    whole = (await retry_failed(client, tenant, since="2000-01-01T00:00:00Z")).json()["run_ids"]
    assert [(await run_of(client, tenant, run_id))["retry_of"] for run_id in whole] == [before]


async def test_retry_failed_keeps_to_its_window_and_connector(
    client: httpx.AsyncClient, sandbox: SandboxServer
) -> None:
    tenant, (first, second) = await failed_hires(client, sandbox, 2)
    since = (await run_of(client, tenant, first))["created_at"]
    until = (await run_of(client, tenant, second))["created_at"]
    assert (await retry_failed(client, tenant, since=since, connector="taleez")).json() == {"run_ids": []}
    only_first = (await retry_failed(client, tenant, since=since, until=until, connector="softgarden")).json()
    assert [(await run_of(client, tenant, run_id))["retry_of"] for run_id in only_first["run_ids"]] == [first]
    other = await create_tenant(client, "other")
    assert (await retry_failed(client, other, since=since)).json() == {"run_ids": []}
    assert (await client.post("/api/v1/tenants/acme/runs/retry-failed", json={"since": since},
                              headers=other.auth)).status_code == 404  # fmt: skip


async def test_concurrent_retry_failed_calls_never_retry_a_run_twice(
    client: httpx.AsyncClient, sandbox: SandboxServer
) -> None:
    tenant, run_ids = await failed_hires(client, sandbox, 3)
    answers = await asyncio.gather(*(retry_failed(client, tenant, since="2000-01-01T00:00:00Z") for _ in range(4)))
    assert {answer.status_code for answer in answers} == {202}
    retries = [run_id for answer in answers for run_id in answer.json()["run_ids"]]
    retried = [(await run_of(client, tenant, run_id))["retry_of"] for run_id in retries]
    assert sorted(retried) == sorted(run_ids)


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({}, ["body", "since"]),
        ({"since": "2026-12-01T08:00:00"}, ["body", "since"]),
        ({"since": 1764576000}, ["body", "since"]),
        ({"since": "yesterday"}, ["body", "since"]),
        ({"since": "2026-12-01T08:00:00Z", "until": "2026-12-01T07:00:00Z"}, ["body", "until"]),
        ({"since": "2026-12-01T08:00:00Z", "until": "2026-12-01T09:00:00+02:00"}, ["body", "until"]),
        ({"since": "2026-12-01T08:00:00Z", "connector": "workday"}, ["body", "connector"]),
        ({"since": "2026-12-01T08:00:00Z", "status": "failed"}, ["body", "status"]),
    ],
)
async def test_retry_failed_refuses_a_bad_window(
    client: httpx.AsyncClient, body: dict[str, Any], loc: list[str]
) -> None:
    tenant = await create_tenant(client, "acme")
    answer = await retry_failed(client, tenant, **body)
    assert answer.status_code == 422, answer.text
    assert [error["loc"] for error in answer.json()["detail"]] == [loc]


# Check connection (contract section 5)


async def check(client: httpx.AsyncClient, tenant: TenantHandle, kind: str) -> httpx.Response:
    return await client.post(f"/api/v1/tenants/{tenant.slug}/connectors/{kind}/check", headers=tenant.auth)


async def test_check_connection_says_in_plain_words_what_works(
    client: httpx.AsyncClient, sandbox: SandboxServer
) -> None:
    lucca = sandbox.new_lucca_account()
    taleez = sandbox.new_taleez_account()
    tenant = await add_softgarden(client, await create_tenant(client, "acme", lucca.base_url, api_key=lucca.api_key))
    settings = {"api_base_url": taleez.base_url, "api_secret": taleez.secret}
    path = "/api/v1/tenants/acme/connectors/taleez"
    assert (await client.put(path, json={"settings": settings}, headers=tenant.auth)).status_code == 200
    calls_before = len(lucca.calls()["items"])
    good = await check(client, tenant, "taleez")
    assert good.status_code == 200
    assert good.json()["ok"] is True
    assert [(item["partner"], item["ok"]) for item in good.json()["checks"]] == [("lucca", True), ("taleez", True)]
    assert "accepted the API key" in good.json()["checks"][0]["message"]
    # One cheap call each: one user id from Lucca.
    calls = lucca.calls()["items"][calls_before:]
    assert len(calls) == 1 and calls[0]["path"].endswith("/api/v3/users")
    assert parse_qs(calls[0]["query"]) == {"fields": ["id"], "paging": ["0,1"]}
    [taleez_call] = taleez.calls()["items"]
    assert (taleez_call["path"], parse_qs(taleez_call["query"])) == ("/candidates", {"page": ["0"], "pageSize": ["1"]})

    wrong = await client.put(path, json={"settings": {**settings, "api_secret": "wrong"}}, headers=tenant.auth)
    assert wrong.status_code == 200
    refused = (await check(client, tenant, "taleez")).json()
    assert refused["ok"] is False and refused["checks"][0]["ok"] is True
    assert refused["checks"][1]["message"].startswith("Taleez refused the API secret: check it")
    assert "wrong" not in str(refused)


async def test_check_connection_with_a_wrong_lucca_key(client: httpx.AsyncClient, sandbox: SandboxServer) -> None:
    lucca = sandbox.new_lucca_account()
    tenant = await add_softgarden(client, await create_tenant(client, "acme", lucca.base_url, api_key="not-the-key"))
    answer = (await check(client, tenant, "softgarden")).json()
    assert answer["ok"] is False
    assert answer["checks"][0]["partner"] == "lucca"
    assert answer["checks"][0]["message"].startswith("Lucca refused the API key: check it in Lucca's API keys settings")
    assert "not-the-key" not in str(answer)


async def test_check_connection_when_the_partner_is_down(client: httpx.AsyncClient) -> None:
    tenant = await add_softgarden(client, await create_tenant(client, "acme", "http://127.0.0.1:9/lucca"))
    answer = (await check(client, tenant, "softgarden")).json()
    assert answer["ok"] is False
    assert answer["checks"][0]["message"] == (
        "Lucca at 127.0.0.1:9 did not answer (connection refused): try again in a few minutes."
    )


async def test_check_connection_of_what_is_not_there(client: httpx.AsyncClient) -> None:
    tenant = await create_tenant(client, "acme")
    other = await add_softgarden(client, await create_tenant(client, "other"))
    assert (await check(client, tenant, "softgarden")).status_code == 404
    assert (await check(client, tenant, "workday")).status_code == 404
    assert (await client.post("/api/v1/tenants/other/connectors/softgarden/check",
                              headers=tenant.auth)).status_code == 404  # fmt: skip
    assert (await client.post("/api/v1/tenants/other/connectors/softgarden/check")).status_code == 401
    assert (await check(client, other, "softgarden")).status_code == 200


@pytest.fixture
async def sftp(tmp_path: Path) -> AsyncIterator[SftpSandbox]:
    """Elevo's SFTP server (the sandbox's asyncssh server), in this test's event loop."""
    server = SftpSandbox(tmp_path / "elevo", password="sftp-password-never-shown")
    await server.start()
    yield server
    await server.stop()


async def test_check_connection_of_elevo_signs_in_to_its_sftp_server(
    client: httpx.AsyncClient, sandbox: SandboxServer, sftp: SftpSandbox, tmp_path: Path
) -> None:
    lucca = sandbox.new_lucca_account()
    tenant = await create_tenant(client, "acme", lucca.base_url, api_key=lucca.api_key)
    path = "/api/v1/tenants/acme/connectors/elevo"
    server = sftp.connection_settings()
    settings: dict[str, Any] = {"sftp": server, "schedule_enabled": False}
    assert (await client.put(path, json={"settings": settings}, headers=tenant.auth)).status_code == 200
    good = (await check(client, tenant, "elevo")).json()
    assert good["ok"] is True and [item["partner"] for item in good["checks"]] == ["lucca", "elevo"]
    assert "accepted the sign-in, and the upload directory / is there" in good["checks"][1]["message"]
    assert sftp.files() == {}  # nothing uploaded

    wrong = {**settings, "sftp": {**server, "password": "not-the-password"}}
    assert (await client.put(path, json={"settings": wrong}, headers=tenant.auth)).status_code == 200
    refused = (await check(client, tenant, "elevo")).json()
    assert refused["ok"] is False and refused["checks"][1]["ok"] is False
    assert "not-the-password" not in str(refused) and refused["checks"][1]["message"]

    other_key = SftpSandbox(tmp_path / "other", password="x").connection_settings()["host_key"]
    unknown = {**settings, "sftp": {**server, "host_key": other_key}}
    assert (await client.put(path, json={"settings": unknown}, headers=tenant.auth)).status_code == 200
    pinned = (await check(client, tenant, "elevo")).json()
    assert pinned["ok"] is False and "key" in pinned["checks"][1]["message"]
