"""The console's Alerts page (contract 12 and 14) in a real headless Chromium against the live API, a real arq
worker, the sandbox and a real SMTP server: channels set from a form, the webhook's secret shown once, a test that
reaches the mail server, and a failed hire's problem listed and linked to its run."""

import httpx
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.expected_conditions import staleness_of
from selenium.webdriver.support.ui import WebDriverWait

from tests.console.conftest import WAIT_SECONDS, Console
from tests.console.test_console import assert_nothing_leaked, hire, hiring_tenant
from tests.e2e.test_recovery import wait_for_run
from tests.factories import SOFTGARDEN_SETTINGS, create_tenant
from tests.live_server import LiveServer
from tests.sandbox_server import LuccaAccount, free_port
from tests.smtp_sink import SmtpSink


def channel_field(console: Console, number: int, label: str) -> WebElement:
    """The control labelled `label` in the form's channel `number` (1 is the first)."""
    xpath = f"//fieldset[legend='Channel {number}']//label[normalize-space()='{label}']"
    found: WebElement = console.wait(lambda: console.driver.find_element(By.XPATH, xpath))
    return console.driver.find_element(By.ID, found.get_attribute("for"))


def save_channels(console: Console) -> None:
    """Save the channels form and wait for the API's answer: the form is built again from what it saved."""
    form = console.driver.find_element(By.XPATH, "//form[h2='Channels']")
    console.click("Save the channels")
    WebDriverWait(console.driver, WAIT_SECONDS).until(staleness_of(form))


def problem_rows(console: Console) -> list[list[str]]:
    """The problems listed: each row's cells (problem, count, since, last seen or resolved, runs, alerts)."""
    rows = console.driver.find_elements(By.XPATH, "//section[h2='Problems']//tbody/tr")
    return [[cell.text for cell in row.find_elements(By.TAG_NAME, "td")] for row in rows]


async def test_channels_are_set_the_webhook_secret_shown_once_and_a_test_reaches_the_mail_server(
    client: httpx.AsyncClient, console: Console, live_api: LiveServer, smtp_sink: SmtpSink
) -> None:
    tenant = await create_tenant(client, "acme")
    # Nobody listens there: the test's answer for that channel says so, in plain words.
    hook = f"http://127.0.0.1:{free_port()}/alerts"
    console.sign_in(tenant.key)
    console.link("Alerts").click()
    console.wait_text("No channel: alerts go nowhere.")
    console.click("Add a channel")
    channel_field(console, 1, "Addresses").send_keys("hr@acme.fr\nnot-an-address")
    console.click("Add a channel")
    kind = channel_field(console, 2, "Kind")
    kind.send_keys("Webhook")
    channel_field(console, 2, "URL").send_keys(hook)
    console.click("Save the channels")
    # The API's 422 is shown next to the field it names, and nothing is stored.
    console.wait(lambda: channel_field(console, 1, "Addresses").get_attribute("aria-invalid") == "true")
    stored = await client.get("/api/v1/tenants/acme/alerts", headers=tenant.auth)
    assert stored.json()["channels"] == []
    addresses = channel_field(console, 1, "Addresses")
    addresses.clear()
    addresses.send_keys("hr@acme.fr")
    save_channels(console)

    assert "The alert channels are saved." in console.text()
    secret = console.field(f"Signing secret of {hook}").get_attribute("value")
    assert secret and secret.startswith("whsec_")
    assert "it will not be shown again" in console.text()
    stored = await client.get("/api/v1/tenants/acme/alerts", headers=tenant.auth)
    assert [channel["kind"] for channel in stored.json()["channels"]] == ["email", "webhook"]
    assert secret not in stored.text
    # Saved again with the same URL, the webhook keeps its secret: nothing is shown. A Slack channel joins them.
    slack = f"http://127.0.0.1:{free_port()}/services/T000/B000/slack-url-secret"
    console.click("Add a channel")
    channel_field(console, 3, "Kind").send_keys("Slack")
    channel_field(console, 3, "URL").send_keys(slack)
    save_channels(console)
    assert "Webhook signing secret" not in console.text()
    console.driver.refresh()
    console.wait_text("Channel 3")
    assert secret not in console.driver.page_source and "slack-url-secret" not in console.driver.page_source
    # Slack's URL is shown masked; saved as shown, every channel stays as it was (the same ids: nothing replaced).
    assert channel_field(console, 3, "URL").get_attribute("value") == f"{slack.split('/services')[0]}/…"
    ids = [
        channel["id"]
        for channel in (await client.get("/api/v1/tenants/acme/alerts", headers=tenant.auth)).json()["channels"]
    ]
    save_channels(console)
    saved = (await client.get("/api/v1/tenants/acme/alerts", headers=tenant.auth)).json()["channels"]
    assert [channel["id"] for channel in saved] == ids and len(ids) == 3

    console.click("Send a test")
    page = console.wait_text("✓ E-mail (hr@acme.fr): ")
    assert f"✗ Webhook (signed) ({hook}): " in page and "✗ Slack (http://127.0.0.1:" in page
    [mail] = await smtp_sink.wait_for(1)
    assert mail.recipients == ["hr@acme.fr"]
    assert_nothing_leaked(console, live_api, [tenant.key, secret, "slack-url-secret"])


async def test_a_failed_hire_s_problem_is_listed_linked_to_its_run_and_resolved(
    client: httpx.AsyncClient, lucca: LuccaAccount, console: Console, smtp_sink: SmtpSink
) -> None:
    tenant = await hiring_tenant(client, lucca)
    channels = {"channels": [{"kind": "email", "to": ["hr@acme.fr"]}]}
    assert (await client.put("/api/v1/tenants/acme/alerts", json=channels, headers=tenant.auth)).status_code == 200
    # A partner's words are shown as text: the company's markup stays letters.
    failed = await hire(client, tenant, applicationId="app-1", company="<b>Acme</b> Roma")
    [opened] = await smtp_sink.wait_for(1, within=WAIT_SECONDS)
    assert "Softgarden hires are failing" in opened.message["Subject"]
    # An alert's link (the console's page of the run, without any token; PUBLIC_BASE_URL is not set in the tests)
    # opens that page once its reader has signed in.
    console.open(f"{console.base}/console#/tenants/acme/runs/{failed}")
    console.type_into("Operator token or tenant key", tenant.key)
    console.click("Sign in")
    console.wait_text("Known establishments")
    assert failed in console.driver.current_url

    console.go("#/tenants/acme")
    console.wait_text("1 problem open now")
    console.link("see them in Alerts").click()
    console.wait(lambda: len(problem_rows(console)) == 1)
    [[problem, count, _, _, _, alerts]] = problem_rows(console)
    assert (
        "Softgarden hires are failing" in problem and "No establishment matches company '<b>Acme</b> Roma'" in problem
    )
    assert count == "1" and alerts.startswith("E-mail, opened: sent ")
    assert console.driver.find_elements(By.CSS_SELECTOR, "main b") == []

    # A second failure of the same kind: the same problem, counted, and no second alert.
    again = await hire(client, tenant, applicationId="app-2", company="Acme Roma")
    assert (await wait_for_run(client, tenant, again, WAIT_SECONDS))["status"] == "failed"
    console.driver.refresh()
    console.wait(lambda: [row[1] for row in problem_rows(console)] == ["2"])
    console.link("The latest run").click()
    console.wait(lambda: again in console.driver.current_url)
    console.wait_text("Known establishments")
    console.driver.back()
    console.link("The first run").click()
    console.wait(lambda: failed in console.driver.current_url)
    assert len(smtp_sink.received) == 1

    # Fixed, and the next hire succeeds: the problem is resolved, with one more alert.
    settings = {**SOFTGARDEN_SETTINGS, "establishment_aliases": {"Acme Roma": 1}}
    path = "/api/v1/tenants/acme/connectors/softgarden"
    assert (await client.put(path, json={"settings": settings}, headers=tenant.auth)).status_code == 200
    fixed = await hire(client, tenant, applicationId="app-3", company="Acme Roma")
    assert (await wait_for_run(client, tenant, fixed, WAIT_SECONDS))["status"] == "succeeded"
    resolved = (await smtp_sink.wait_for(2, within=WAIT_SECONDS))[1]
    assert "Resolved: " in resolved.message["Subject"]
    console.go("#/tenants/acme/alerts")
    console.wait_text("Nothing is broken: no problem is open.")
    console.click("Show the resolved problems")
    [[problem, _, _, _, _, alerts]] = console.wait(lambda: problem_rows(console))
    assert "Softgarden hires are failing" in problem
    assert [line.split(": ")[0] for line in alerts.splitlines()] == ["E-mail, opened", "E-mail, resolved"]
    assert "not delivered" not in alerts and "waiting" not in alerts
    console.link("The run that resolved it").click()
    console.wait(lambda: fixed in console.driver.current_url)
    assert console.script_errors() == []


async def test_an_alert_that_cannot_be_delivered_shows_its_attempts_and_error(
    client: httpx.AsyncClient, lucca: LuccaAccount, console: Console
) -> None:
    tenant = await hiring_tenant(client, lucca)
    # Nobody listens there: the alert is retried, and the page says so while it waits.
    hook = f"http://127.0.0.1:{free_port()}/alerts/receiver-token-0123456789abcdef"
    channels = {"channels": [{"kind": "webhook", "url": hook}]}
    assert (await client.put("/api/v1/tenants/acme/alerts", json=channels, headers=tenant.auth)).status_code == 200
    failed = await hire(client, tenant, company="Acme Roma")
    assert (await wait_for_run(client, tenant, failed, WAIT_SECONDS))["status"] == "failed"
    console.sign_in(tenant.key)
    console.link("see them in Alerts").click()
    # The page reads the problems again while an alert is on its way.
    [[_, _, _, _, _, alerts]] = console.wait(
        lambda: [row for row in problem_rows(console) if "attempt" in row[5]] or None
    )
    assert alerts.startswith("Webhook (signed), opened: waiting to be sent (")
    assert " · " in alerts and "receiver-token" not in alerts
    assert console.script_errors() == []
