"""What the console must do for the people who use it (issue 10, "What must hold"), in a real headless Chromium
against the real API, Postgres, Redis, an arq worker and the sandbox."""

import asyncio
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx
import pytest
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from app.sandbox.sftp import SftpSandbox
from tests.console.conftest import LAPTOP, PHONE, WAIT_SECONDS, Console
from tests.e2e.conftest import WEBHOOK
from tests.e2e.test_recovery import wait_for_run
from tests.factories import ADMIN, SOFTGARDEN_SETTINGS, TenantHandle, add_softgarden, create_tenant, hire_body
from tests.live_server import LiveServer
from tests.sandbox_server import LuccaAccount, SandboxServer
from tests.smtp_sink import SmtpSink


async def hiring_tenant(client: httpx.AsyncClient, lucca: LuccaAccount, slug: str = "acme") -> TenantHandle:
    tenant = await create_tenant(client, slug, base_url=lucca.base_url, api_key=lucca.api_key)
    return await add_softgarden(client, tenant)


async def console_url(client: httpx.AsyncClient, slug: str, ttl_seconds: int = 3600) -> str:
    made = await client.post(f"/api/v1/tenants/{slug}/console-links", json={"ttl_seconds": ttl_seconds}, headers=ADMIN)
    assert made.status_code == 201, made.text
    url: str = made.json()["url"]
    return url


async def hire(client: httpx.AsyncClient, tenant: TenantHandle, **changes: Any) -> str:
    answer = await client.post(WEBHOOK, json=hire_body(**changes), headers=tenant.webhook_auth)
    assert answer.status_code == 202, answer.text
    run_id: str = answer.json()["run_id"]
    return run_id


async def run_of(client: httpx.AsyncClient, tenant: TenantHandle, run_id: str) -> dict[str, Any]:
    answer = await client.get(f"/api/v1/tenants/{tenant.slug}/runs/{run_id}", headers=tenant.auth)
    assert answer.status_code == 200
    run: dict[str, Any] = answer.json()
    return run


def assert_nothing_leaked(console: Console, live_api: LiveServer, tokens: list[str]) -> None:
    """No request URL of the page carried a token, no script failed, and the API's log holds none of them."""
    urls = console.request_urls()
    assert any("/api/v1/" in url for url in urls)
    for url in urls:
        assert not any(token in url for token in tokens), url
    assert console.script_errors() == []
    log = live_api.log()
    assert not any(token in log for token in tokens)


async def test_a_failed_hire_fixed_from_the_console_after_signing_in_with_a_link(
    client: httpx.AsyncClient, lucca: LuccaAccount, console: Console, live_api: LiveServer
) -> None:
    tenant = await hiring_tenant(client, lucca)
    run_id = await hire(client, tenant, company="Acme Roma", email="zoe.m@gmail.com")
    url = await console_url(client, "acme")
    token = urlsplit(url).fragment.removeprefix("token=")

    console.open(url)
    console.wait_text("Connectors")
    # The token left the address bar at once, and lives in this tab's sessionStorage only.
    assert "token" not in console.driver.current_url
    assert console.stored_token() == token
    assert console.driver.get_cookies() == []

    console.link("Runs").click()
    console.wait(lambda: console.visible("table .badge-failed"))
    console.find("table a").click()
    page = console.wait_text("Known establishments")
    assert (
        "No establishment matches company 'Acme Roma'. Known establishments: Acme Paris (1), Acme Berlin (2)." in page
    )

    console.link("Connectors").click()
    console.link("Softgarden").click()
    console.click("Add to Establishment aliases")
    console.find("input.map-key").send_keys("Acme Roma")
    console.find("input.map-value").send_keys("1")
    console.click("Save the settings")
    console.wait_text("The Softgarden settings are saved.")

    console.link("Runs").click()
    console.find("table a").click()
    console.click("Retry")
    console.wait(lambda: console.visible(".badge-succeeded"))
    retry = (await run_of(client, tenant, run_id))["retried_by"]
    assert retry and retry in console.driver.current_url
    assert (await run_of(client, tenant, retry))["counts"]["created"] == 1
    assert_nothing_leaked(console, live_api, [token])


async def test_partner_values_are_shown_as_text_and_no_script_runs(
    client: httpx.AsyncClient, lucca: LuccaAccount, console: Console, live_api: LiveServer
) -> None:
    tenant = await hiring_tenant(client, lucca)
    hostile = "<img src=x onerror=alert(1)>"
    await hire(client, tenant, firstName=hostile, lastName="Müller", email=None, company="<b>Acme</b> Roma")
    console.sign_in(tenant.key)
    console.link("Runs").click()
    console.wait(lambda: console.visible("table .badge-failed"))
    console.find("table a").click()
    page = console.wait_text("Known establishments")
    assert f"{hostile} Müller" in page
    assert "No establishment matches company '<b>Acme</b> Roma'" in page
    assert console.driver.find_elements(By.CSS_SELECTOR, "main img, main b") == []
    with pytest.raises(NoAlertPresentException):
        console.driver.switch_to.alert.text  # noqa: B018 (reading it is the check)
    assert_nothing_leaked(console, live_api, [tenant.key])


async def test_searching_for_a_person_finds_their_run(
    client: httpx.AsyncClient, lucca: LuccaAccount, console: Console
) -> None:
    tenant = await hiring_tenant(client, lucca)
    zoe = await hire(client, tenant, applicationId="app-zoe", email=None, firstName="Zoë", lastName="Müller")
    ines = await hire(
        client, tenant, applicationId="app-ines", email="ines.dupre@perso.fr", firstName="Inès", lastName="Dupré"
    )
    # The search finds runs by their events, which the worker writes: search once both have them.
    for run_id in (zoe, ines):
        assert (await wait_for_run(client, tenant, run_id, 30))["status"] == "succeeded"
    console.sign_in(tenant.key)
    console.link("Runs").click()
    console.wait(lambda: len(console.driver.find_elements(By.CSS_SELECTOR, "table tbody tr")) == 2)
    console.type_into("Person", "zoe muller")
    console.click("Show")
    console.wait(lambda: len(console.driver.find_elements(By.CSS_SELECTOR, "table tbody tr")) == 1)
    console.find("table a").click()
    console.wait(lambda: zoe in console.driver.current_url)
    console.go(f"#/tenants/acme/runs?subject={'INES.DUPRE@perso.fr'}")
    console.wait_text("1 run, newest first")
    console.type_into("Person", "nobody@nowhere.fr")
    console.click("Show")
    console.wait_text("No run is about “nobody@nowhere.fr”.")


async def test_retry_all_failed_since_retries_exactly_the_failed_runs_of_the_window(
    client: httpx.AsyncClient, lucca: LuccaAccount, console: Console, migrated_database: str
) -> None:
    tenant = await hiring_tenant(client, lucca)
    old = await hire(client, tenant, applicationId="app-old", company="Acme Roma")
    roma = await hire(client, tenant, applicationId="app-roma", company="Acme Roma")
    milano = await hire(client, tenant, applicationId="app-milano", company="Acme Milano")
    console.sign_in(tenant.key)
    console.link("Runs").click()
    console.wait(lambda: len(console.driver.find_elements(By.CSS_SELECTOR, "table .badge-failed")) == 3)
    # Milano's hire is fixed and retried with success; the oldest failure is from two days ago.
    settings = {**SOFTGARDEN_SETTINGS, "establishment_aliases": {"Acme Milano": 2}}
    path = "/api/v1/tenants/acme/connectors/softgarden"
    assert (await client.put(path, json={"settings": settings}, headers=tenant.auth)).status_code == 200
    fixed = (await client.post(f"/api/v1/tenants/acme/runs/{milano}/retry", headers=tenant.auth)).json()["run_id"]
    connection = await asyncpg.connect(migrated_database.replace("+asyncpg", ""))
    try:
        await connection.execute("UPDATE runs SET created_at = now() - interval '2 days' WHERE id = $1", old)
    finally:
        await connection.close()
    console.driver.refresh()  # the page refreshes by itself only while a run it shows is unfinished
    console.wait(lambda: console.visible("table .badge-succeeded"))

    # The form's default moment is a day ago, in the tenant's timezone.
    console.click("Retry all failed")
    console.wait_text("1 run retried.")
    assert (await run_of(client, tenant, old))["retried_by"] is None
    assert (await run_of(client, tenant, milano))["retried_by"] == fixed
    retry = (await run_of(client, tenant, roma))["retried_by"]
    assert retry is not None and (await run_of(client, tenant, retry))["retry_of"] == roma


async def test_the_connectors_show_every_failure_of_the_last_7_days(
    client: httpx.AsyncClient, console: Console, migrated_database: str
) -> None:
    """The count comes from the API (`…/runs/failures`), so failures beyond the newest 500 runs count too."""
    await add_softgarden(client, await create_tenant(client, "acme"))
    connection = await asyncpg.connect(migrated_database.replace("+asyncpg", ""))
    try:
        await connection.execute(
            """INSERT INTO runs (id, tenant_id, connector, operation, trigger, status, counts, input, state,
                                 created_at, retry_at)
               SELECT gen_random_uuid(), id, 'softgarden', 'candidate_hired', 'webhook', 'failed', '{}', '{}', '{}',
                      now() - make_interval(mins => n), now()
               FROM tenants, generate_series(1, 600) AS n WHERE slug = 'acme'"""
        )
    finally:
        await connection.close()
    console.open(await console_url(client, "acme"))
    console.wait_text("Failures (7 days)")
    row = console.driver.find_element(By.XPATH, "//tr[th//a[normalize-space()='Softgarden']]")
    assert row.find_elements(By.TAG_NAME, "td")[3].text == "600"
    assert console.script_errors() == []


async def test_check_connection_with_a_wrong_lucca_key_says_so(
    client: httpx.AsyncClient, lucca: LuccaAccount, console: Console
) -> None:
    tenant = await add_softgarden(client, await create_tenant(client, "acme", lucca.base_url, api_key="wrong-key"))
    console.sign_in(tenant.key)
    console.link("Softgarden").click()
    console.click("Check connection")
    page = console.wait_text("✗ Lucca: ")
    assert "Lucca refused the API key: check it in Lucca's API keys settings" in page
    assert "wrong-key" not in page


async def test_an_expired_or_foreign_link_and_a_wrong_key_show_no_data(
    client: httpx.AsyncClient, lucca: LuccaAccount, console: Console, migrated_database: str
) -> None:
    await hiring_tenant(client, lucca)
    await create_tenant(client, "other")
    console.sign_in("lct_not-a-key")
    console.wait_text("This key or link is not valid")
    assert console.field("Operator token or tenant key") and console.stored_token() is None

    # Another tenant's link: acme looks as if it did not exist.
    console.open(await console_url(client, "other"))
    console.wait_text("other SAS")
    console.go("#/tenants/acme/runs")
    console.wait_text("Tenant not found.")
    assert "acme SAS" not in console.text()

    expired = await console_url(client, "acme")
    connection = await asyncpg.connect(migrated_database.replace("+asyncpg", ""))
    try:
        await connection.execute("UPDATE console_links SET expires_at = now() - interval '1 second'")
    finally:
        await connection.close()
    console.click("Sign out")
    console.open(expired)
    console.wait_text("This console link has expired")
    assert "acme SAS" not in console.text() and console.stored_token() is None


async def test_the_operator_creates_a_tenant_and_sees_its_key_once(client: httpx.AsyncClient, console: Console) -> None:
    console.sign_in("test-operator-token")
    console.wait_text("No tenant yet")
    console.type_into("Slug (a-z, 0-9, -)", "new-co")
    console.type_into("Name", "New Co")
    console.type_into("Lucca URL", "not a url")
    console.type_into("Lucca API key", "secret-key")
    console.click("Create the tenant")
    # The API's 422 is shown next to its field.
    console.wait(lambda: console.field("Lucca URL").get_attribute("aria-invalid") == "true")
    assert "must be an https or http URL" in console.text()
    console.type_into("Lucca URL", "https://newco.ilucca.net")
    console.type_into("Lucca API key", "secret-key")
    console.click("Create the tenant")
    console.wait_text("Tenant new-co created")
    key = console.field("Tenant key").get_attribute("value")
    assert key and key.startswith("lct_")
    assert (await client.get("/api/v1/tenants/new-co", headers={"Authorization": f"Bearer {key}"})).status_code == 200
    assert "secret-key" not in console.text()
    console.wait(lambda: console.link("new-co"))


async def test_the_operator_creates_a_tenant_with_oauth_alone(client: httpx.AsyncClient, console: Console) -> None:
    console.sign_in("test-operator-token")
    console.wait_text("No tenant yet")
    console.type_into("Slug (a-z, 0-9, -)", "oauth-co")
    console.type_into("Name", "OAuth Co")
    console.type_into("Lucca URL", "https://oauthco.ilucca.net")
    console.click("Create the tenant")
    console.wait_text("give api_key, oauth or both")
    console.type_into("Lucca OAuth client id (with or instead of the key)", "oauth-co-directory")
    console.type_into("OAuth client secret", "oauth-co-secret")
    console.type_into("Directory poll interval (seconds)", "120")
    console.click("Create the tenant")
    console.wait_text("Tenant oauth-co created")
    read = await client.get("/api/v1/tenants/oauth-co", headers={"Authorization": "Bearer test-operator-token"})
    lucca = read.json()["lucca"]
    assert (lucca["api_key_set"], lucca["oauth_set"], lucca["poll_seconds"]) == (False, True, 120)
    assert "oauth-co-secret" not in console.text()


async def test_the_tenant_key_is_rotated_from_the_console_and_shown_once(
    client: httpx.AsyncClient, console: Console, live_api: LiveServer
) -> None:
    tenant = await create_tenant(client, "acme")
    console.sign_in(tenant.key)
    console.wait_text("Access")
    console.click("Rotate the tenant key")
    console.wait_text("The current key stops working at once")
    console.click("Yes, rotate it")
    console.wait_text("New tenant key")
    key = console.field("Tenant key").get_attribute("value")
    assert key and key.startswith("lct_") and key != tenant.key
    assert console.button("Copy")
    assert (await client.get("/api/v1/tenants/acme", headers=tenant.auth)).status_code == 401
    assert (await client.get("/api/v1/tenants/acme", headers={"Authorization": f"Bearer {key}"})).status_code == 200
    # This tab was signed in with the old key: it goes on with the new one.
    assert console.stored_token() == key
    console.link("Runs").click()
    console.wait_text("No run yet: the first hire will show here.")
    assert_nothing_leaked(console, live_api, [tenant.key, key])


async def test_console_links_are_listed_and_ended_from_the_console(client: httpx.AsyncClient, console: Console) -> None:
    tenant = await create_tenant(client, "acme")
    by_key = await client.post("/api/v1/tenants/acme/console-links", headers=tenant.auth)
    by_operator = urlsplit(await console_url(client, "acme")).fragment.removeprefix("token=")
    tokens = [{"Authorization": f"Bearer {token}"} for token in (by_key.json()["url"].split("#token=")[1], by_operator)]
    console.sign_in("test-operator-token")
    console.go("#/tenants/acme")
    console.wait_text("Console links")

    def rows() -> list[str]:
        return [
            row.text for row in console.driver.find_elements(By.XPATH, "//section[.//h3='Console links']//tbody/tr")
        ]

    console.wait(lambda: len(rows()) == 2)
    assert "The operator" in rows()[0] and "The tenant key" in rows()[1]
    console.click("Make a console link")
    console.wait(lambda: len(rows()) == 3)
    console.find("button[aria-label^='End it: the link made']")
    console.driver.find_elements(By.CSS_SELECTOR, "button[aria-label^='End it: the link made']")[2].click()
    console.wait_text("The link is ended")
    console.wait(lambda: len(rows()) == 2)
    assert (await client.get("/api/v1/me", headers=tokens[0])).status_code == 401
    assert (await client.get("/api/v1/me", headers=tokens[1])).status_code == 200
    console.click("End every link")
    console.click("Yes, end every link")
    console.wait_text("No live console link.")
    assert (await client.get("/api/v1/me", headers=tokens[1])).status_code == 401
    assert console.script_errors() == []

    # Signed in with a link, nobody sees the tenant key or the links.
    console.click("Sign out")
    console.open(await console_url(client, "acme"))
    console.wait_text("Failures (7 days)")
    assert "Rotate the tenant key" not in console.text() and "Console links" not in console.text()


async def test_screenshots_of_the_main_pages(
    client: httpx.AsyncClient,
    sandbox: SandboxServer,
    lucca: LuccaAccount,
    console: Console,
    screenshots: Path,
    tmp_path: Path,
    smtp_sink: SmtpSink,
) -> None:
    tenant = await hiring_tenant(client, lucca)
    await create_tenant(client, "globex")
    alerts = {"channels": [{"kind": "email", "to": ["hr@acme.fr", "it@acme.fr"]}]}
    assert (await client.put("/api/v1/tenants/acme/alerts", json=alerts, headers=tenant.auth)).status_code == 200
    # The preview uploads nothing: the SFTP server need not run.
    sftp = {**SftpSandbox(tmp_path / "elevo", password="x").connection_settings(), "port": 2222}
    elevo = {"sftp": sftp, "schedule_enabled": False}
    for kind, settings in (("cards", sandbox.new_cards_account().connector_settings()), ("elevo", elevo)):
        path = f"/api/v1/tenants/acme/connectors/{kind}"
        put = await client.put(path, json={"settings": settings}, headers=tenant.auth)
        assert put.status_code == 200, put.text
    hired = await hire(
        client, tenant, applicationId="app-1", email="zoe.m@gmail.com", firstName="Zoë", lastName="Müller"
    )
    # Done before the failure: a success after it would resolve the problem the Alerts page shows.
    assert (await wait_for_run(client, tenant, hired, WAIT_SECONDS))["status"] == "succeeded"
    failed = await hire(client, tenant, applicationId="app-2", email="ines@perso.fr", firstName="Inès",
                        lastName="Dupré", company="Acme Roma")  # fmt: skip
    console.sign_in("test-operator-token")
    console.wait_text("globex")
    # The runs: the two hires, and the directory's first full sync, which enabling Cards started.
    pages = [("tenants", "#/", "globex"), ("connectors", "#/tenants/acme", "Failures (7 days)"),
             ("runs", "#/tenants/acme/runs", "3 runs"), ("run", f"#/tenants/acme/runs/{failed}", "Known establishments"),
             ("settings", "#/tenants/acme/connectors/softgarden", "Professional email template"),
             ("cards", "#/tenants/acme/cards", "Jean Dupont"), ("elevo", "#/tenants/acme/elevo", "Left out"),
             ("alerts", "#/tenants/acme/alerts", "E-mail, opened: sent")]  # fmt: skip
    for name, route, words in pages:
        console.go(route)
        console.wait_text(words)
        if name == "runs":
            console.wait(lambda: not console.visible(".badge-queued, .badge-running"))
        for size, label in ((LAPTOP, "laptop"), (PHONE, "phone")):
            console.screenshot(f"{name}-{label}", size, screenshots)


async def test_two_cards_users_imported_from_the_listing_with_notify_on(
    client: httpx.AsyncClient, sandbox: SandboxServer, lucca: LuccaAccount, console: Console
) -> None:
    cards = sandbox.new_cards_account()
    tenant = await create_tenant(client, "acme", base_url=lucca.base_url, api_key=lucca.api_key)
    body = {"enabled": True, "settings": cards.connector_settings()}
    assert (
        await client.put("/api/v1/tenants/acme/connectors/cards", json=body, headers=tenant.auth)
    ).status_code == 200
    console.sign_in(tenant.key)
    console.link("Cards").click()
    console.wait_text("Jean Dupont")

    def with_status(status: str) -> int:
        return len(console.driver.find_elements(By.CSS_SELECTOR, f"table .cards-{status}"))

    assert with_status("not_imported") == 2
    notify = console.field("Notify created users (Cards emails them to set a password or sign in)")
    assert not notify.is_selected()
    notify.click()
    for name in ("Claire Martin", "Jean Dupont"):
        console.find(f"input[aria-label='Select {name}']").click()
    console.click("Import selected")
    console.wait(lambda: with_status("imported") == 2 and with_status("not_imported") == 0)
    # Claire was in Cards already (linked); Jean was created, with the invitation asked for.
    by_email = {user["email"].casefold(): user for user in cards.users()}
    assert len(by_email) == 2 and by_email["jean.dupont@acme.fr"]["notify"] is True
    assert by_email["claire.martin@acme.fr"]["notify"] is None  # seeded, not created
    assert console.script_errors() == []


async def test_the_directory_panel_shows_the_copy_and_starts_a_full_sync(
    client: httpx.AsyncClient, sandbox: SandboxServer, lucca: LuccaAccount, console: Console, migrated_database: str
) -> None:
    tenant = await create_tenant(client, "acme", base_url=lucca.base_url, api_key=lucca.api_key)
    body = {"enabled": True, "settings": sandbox.new_cards_account().connector_settings()}
    assert (await client.put("/api/v1/tenants/acme/connectors/cards", json=body, headers=tenant.auth)).is_success
    # Enabling Cards started the first full sync; a complete sync's notices replace the kept ones, so the notice
    # below goes in once it is done.
    deadline = asyncio.get_running_loop().time() + WAIT_SECONDS
    while (await client.get("/api/v1/tenants/acme/lucca/directory", headers=tenant.auth)).json()[
        "last_full_sync_at"
    ] is None:
        assert asyncio.get_running_loop().time() < deadline, "the first full sync never completed"
        await asyncio.sleep(0.2)
    # What Lucca announced, as partners word it: shown as text.
    notice = "Lucca will retire <b>/api/v3/users</b> on 2027-06-30 (Sunset header): move to the OAuth API."
    connection = await asyncpg.connect(migrated_database.replace("+asyncpg", ""))
    try:
        await connection.execute("UPDATE directory_states SET notices = $1::jsonb", f'["{notice}"]')
    finally:
        await connection.close()
    console.sign_in(tenant.key)
    console.wait_text("Lucca directory")
    page = console.wait_text("Complete")
    for words in ("Employees 3", "Departments 3", "Kept fresh by Polling Lucca", "Webhook None", notice):
        assert words in page, page
    assert console.driver.find_elements(By.CSS_SELECTOR, "main b") == []

    lucca.server.control.delete(f"/lucca/accounts/{lucca.name}/calls").raise_for_status()
    console.click("Full sync")
    console.wait(lambda: console.visible(".badge-succeeded"))
    syncs = await client.get("/api/v1/tenants/acme/runs", params={"operation": "directory_sync"}, headers=tenant.auth)
    assert [run["status"] for run in syncs.json()["items"]] == ["succeeded", "succeeded"]
    assert lucca.calls()["items"]  # the second one read Lucca again
    assert console.script_errors() == []


async def test_auto_sync_and_push_on_change_are_set_from_the_settings_forms(
    client: httpx.AsyncClient, sandbox: SandboxServer, lucca: LuccaAccount, console: Console, tmp_path: Path
) -> None:
    tenant = await create_tenant(client, "acme", base_url=lucca.base_url, api_key=lucca.api_key)
    # Neither connector is reached here: Elevo's SFTP server need not run.
    sftp = {**SftpSandbox(tmp_path / "elevo", password="x").connection_settings(), "port": 2222}
    for kind, settings in (("cards", sandbox.new_cards_account().connector_settings()),
                           ("elevo", {"sftp": sftp, "schedule_enabled": False})):  # fmt: skip
        put = await client.put(
            f"/api/v1/tenants/acme/connectors/{kind}", json={"settings": settings}, headers=tenant.auth
        )
        assert put.status_code == 200, put.text
    console.sign_in(tenant.key)
    console.wait_text("Connectors")

    console.go("#/tenants/acme/connectors/cards")
    console.wait_text("Auto sync: Cards follows Lucca's directory on its own")
    users = console.field("Users: every current employee is a Cards user")
    assert not users.is_selected()
    users.click()
    departments = Select(console.field("Departments kept as Cards groups"))
    assert [option.text for option in departments.options] == [
        "None", "Those already imported as groups", "Every active department"
    ]  # fmt: skip
    departments.select_by_value("imported")
    console.choose("Leavers (contract ended, or gone from Lucca)", "remove_from_groups")
    console.click("Save the settings")
    console.wait_text("The Cards settings are saved.")
    cards = (await client.get("/api/v1/tenants/acme/connectors/cards", headers=tenant.auth)).json()
    assert cards["settings"]["auto_sync"] == {"users": True, "departments": "imported", "leavers": "remove_from_groups"}
    assert cards["settings"]["api_token"] == "***"  # left empty in the form: the stored token stays
    console.link("Cards").click()
    console.wait_text(
        "Auto sync is on: Cards follows Lucca's directory within a minute. Users: every current employee;"
    )

    console.go("#/tenants/acme/connectors/elevo")
    push = console.field("Push on change: send a new file when Lucca changes")
    assert not push.is_selected()
    push.click()
    minutes = console.field("Minutes at least between two files")
    assert (minutes.get_attribute("min"), minutes.get_attribute("max")) == ("1", "1440")
    assert "From 1 to 1440." in console.text()
    minutes.clear()
    minutes.send_keys("0")
    console.click("Save the settings")
    # The API's 422 is shown next to the field it names, and nothing is stored.
    console.wait(lambda: console.field("Minutes at least between two files").get_attribute("aria-invalid") == "true")
    assert "greater than or equal to 1" in console.text()
    elevo = (await client.get("/api/v1/tenants/acme/connectors/elevo", headers=tenant.auth)).json()
    assert (elevo["settings"]["push_on_change"], elevo["settings"]["min_interval_minutes"]) == (False, 10)
    console.type_into("Minutes at least between two files", "5")
    console.click("Save the settings")
    console.wait_text("The Elevo settings are saved.")
    elevo = (await client.get("/api/v1/tenants/acme/connectors/elevo", headers=tenant.auth)).json()
    assert (elevo["settings"]["push_on_change"], elevo["settings"]["min_interval_minutes"]) == (True, 5)
    console.link("Elevo").click()
    console.wait_text(
        "Push on change is on: a change in Lucca that changes the file sends a new one on its own, at most every 5 minutes."
    )
    assert console.script_errors() == []


async def changes_run(client: httpx.AsyncClient, tenant: TenantHandle) -> dict[str, Any]:
    """The tenant's first `changes` run once it has finished (auto_sync's own, made by the worker)."""
    for _ in range(WAIT_SECONDS * 4):
        answer = await client.get(f"/api/v1/tenants/{tenant.slug}/runs", params={"operation": "changes"},
                                  headers=tenant.auth)  # fmt: skip
        runs: list[dict[str, Any]] = answer.json()["items"]
        finished = [run for run in runs if run["status"] not in ("queued", "running")]
        if finished:
            return finished[-1]
        await asyncio.sleep(0.25)
    raise AssertionError("auto_sync made no changes run")


async def test_a_run_that_auto_sync_made_reads_as_a_change_in_lucca(
    client: httpx.AsyncClient, sandbox: SandboxServer, lucca: LuccaAccount, console: Console
) -> None:
    tenant = await create_tenant(client, "acme", base_url=lucca.base_url, api_key=lucca.api_key)
    follow = {"users": True, "departments": "none", "leavers": "keep"}
    body = {"enabled": True, "settings": sandbox.new_cards_account().connector_settings(auto_sync=follow)}
    assert (await client.put("/api/v1/tenants/acme/connectors/cards", json=body, headers=tenant.auth)).is_success
    # Once the directory's first full sync is done, the worker brings the space in line: Jean is created in Cards,
    # Claire (in Cards already) linked, in one run started by the directory's changes.
    run = await changes_run(client, tenant)
    assert (run["connector"], run["trigger"], run["status"]) == ("cards", "change", "succeeded")
    console.sign_in(tenant.key)
    console.link("Runs").click()
    row = console.wait(lambda: next((row for row in console.driver.find_elements(By.CSS_SELECTOR, "table tbody tr")
                                     if "Changes followed" in row.text), None))  # fmt: skip
    assert "Cards Changes followed Lucca change succeeded 2 items: 1 created, 1 linked" in row.text
    row.find_element(By.TAG_NAME, "a").click()
    console.wait(lambda: run["id"] in console.driver.current_url)
    page = console.wait_text("Created in Cards as user")
    assert "Changes followed (Cards)" in page and "Trigger\nLucca change" in page
    assert "jean.dupont@acme.fr" in page and "has this e-mail: linked, not created." in page
    assert console.script_errors() == []


async def test_a_long_run_s_events_are_read_page_by_page(
    client: httpx.AsyncClient, lucca: LuccaAccount, console: Console, migrated_database: str
) -> None:
    tenant = await hiring_tenant(client, lucca)
    # A status that is no hire makes a finished run with one event; 1,199 more follow it.
    answer = await client.post(WEBHOOK, json=hire_body(status="Interview"), headers=tenant.webhook_auth)
    run_id = answer.json()["run_id"]
    connection = await asyncpg.connect(migrated_database.replace("+asyncpg", ""))
    try:
        await connection.execute(
            "INSERT INTO run_events (run_id, tenant_id, at, level, subject, action, message) SELECT $1, "
            "(SELECT tenant_id FROM runs WHERE id = $1), now(), 'info', 'person' || n || '@acme.fr', 'note', "
            "'Event ' || n || '.' FROM generate_series(2, 1200) AS n",
            run_id,
        )
    finally:
        await connection.close()
    console.sign_in(tenant.key)
    console.go(f"#/tenants/acme/runs/{run_id}")

    def rows() -> int:
        return len(console.driver.find_elements(By.CSS_SELECTOR, "table tbody tr"))

    console.wait(lambda: rows() == 500)
    console.click("Show more")
    console.wait(lambda: rows() == 1000)
    console.click("Show more")
    console.wait(lambda: rows() == 1200)
    assert "person1200@acme.fr" in console.text()
    assert not console.driver.find_elements(By.XPATH, "//button[normalize-space()='Show more']")
