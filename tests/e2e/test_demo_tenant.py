"""The demo tenant as `scripts/run.sh` sets it up (`app/sandbox/demo_tenant.py`), through the live API against the
sandbox: its connectors as the demo needs them (Cards' auto_sync and Elevo's push_on_change on), and the hire its
output prints, run as printed, followed by Cards on its own (real arq workers, the poller's pass as its cron runs
it)."""

import json
import subprocess
from datetime import date
from pathlib import Path

import httpx
from sqlalchemy import select

from app.directory.polling import poll_tenant
from app.models import Tenant
from app.sandbox.demo_tenant import SLUG, failing_hire_curl, lucca_hire_curl, set_up_tenant
from app.sandbox.sftp import demo_sftp
from app.services.context import Services
from app.workers.freshness import directory_poll_due
from tests.e2e.conftest import drain_queue
from tests.e2e.directory_helpers import running_services
from tests.factories import ADMIN
from tests.live_server import LiveServer
from tests.sandbox_server import CardsAccount, SandboxServer
from tests.smtp_sink import SmtpSink


async def test_the_demo_tenant_is_set_to_follow_lucca_and_cards_follows_the_hire_it_prints(
    client: httpx.AsyncClient, sandbox: SandboxServer, live_api: LiveServer, tmp_path: Path
) -> None:
    lucca, taleez, cards = sandbox.new_lucca_account(), sandbox.new_taleez_account(), sandbox.new_cards_account()
    sftp, _ = demo_sftp(port=2222, directory=tmp_path / "sftp")
    with httpx.Client(base_url=live_api.url, headers=ADMIN, timeout=10) as api:
        first = set_up_tenant(api, lucca.base_url, taleez.base_url, cards.base_url, sftp)
        # run.sh sets it up again on each start: the tenant is refreshed, with fresh webhook tokens.
        again = set_up_tenant(api, lucca.base_url, taleez.base_url, cards.base_url, sftp)
    assert len(set(first + again)) == 4

    connectors = {}
    for kind in ("softgarden", "taleez", "cards", "elevo"):
        answer = await client.get(f"/api/v1/tenants/{SLUG}/connectors/{kind}", headers=ADMIN)
        assert answer.status_code == 200, answer.text
        connectors[kind] = answer.json()
    assert all(connector["enabled"] for connector in connectors.values())
    auto_sync = connectors["cards"]["settings"]["auto_sync"]
    assert auto_sync == {"users": True, "departments": "imported", "leavers": "remove_from_groups"}
    elevo = connectors["elevo"]["settings"]
    assert (elevo["push_on_change"], elevo["min_interval_minutes"], elevo["schedule_enabled"]) == (True, 1, False)

    # Elevo's following is tests/e2e/test_elevo_push.py's (its interval would hold the workers here a minute).
    elevo_off = await client.patch(f"/api/v1/tenants/{SLUG}/connectors/elevo", json={"enabled": False}, headers=ADMIN)
    assert elevo_off.status_code == 200, elevo_off.text

    async with running_services() as services:
        await follow(services)  # the directory's first full sync; then auto_sync brings the space in line
        assert emails(cards) == {"claire.martin@acme.fr", "jean.dupont@acme.fr"}
        # The printed hire, run as printed: Nadia Roux joins Engineering in the sandbox's Lucca, and Cards follows.
        printed = subprocess.run(["bash", "-c", lucca_hire_curl(lucca.base_url)], capture_output=True, check=True)
        hired = json.loads(printed.stdout)["data"]
        assert (hired["name"], hired["department"]["name"]) == ("Nadia Roux", "Engineering")
        assert hired["dtContractStart"].startswith(date.today().isoformat())
        async with services.sessionmaker() as session:
            tenant_id = await session.scalar(select(Tenant.id).where(Tenant.slug == SLUG))
        assert tenant_id is not None
        await poll_tenant(services, tenant_id, 30)
        await follow(services)
    assert "nadia.roux@acme.fr" in emails(cards)
    runs = await client.get(f"/api/v1/tenants/{SLUG}/runs", params={"operation": "changes"}, headers=ADMIN)
    assert [(run["trigger"], run["status"], run["counts"]["created"]) for run in runs.json()["items"]] == [
        ("change", "succeeded", 1),  # Nadia
        ("change", "succeeded", 1),  # Jean, when switched on (Claire was linked)
    ]


async def test_the_demo_tenant_s_failing_hire_sends_its_alert_by_e_mail(
    client: httpx.AsyncClient, sandbox: SandboxServer, live_api: LiveServer, tmp_path: Path, smtp_sink: SmtpSink
) -> None:
    lucca, taleez, cards = sandbox.new_lucca_account(), sandbox.new_taleez_account(), sandbox.new_cards_account()
    sftp, _ = demo_sftp(port=2222, directory=tmp_path / "sftp")
    with httpx.Client(base_url=live_api.url, headers=ADMIN, timeout=10) as api:
        token, _ = set_up_tenant(api, lucca.base_url, taleez.base_url, cards.base_url, sftp)
    alerts = await client.get(f"/api/v1/tenants/{SLUG}/alerts", headers=ADMIN)
    assert [(channel["kind"], channel["to"]) for channel in alerts.json()["channels"]] == [("email", ["hr@acme.fr"])]
    # No SFTP server listens here: Elevo's pushes would be problems of their own.
    elevo_off = await client.patch(f"/api/v1/tenants/{SLUG}/connectors/elevo", json={"enabled": False}, headers=ADMIN)
    assert elevo_off.status_code == 200, elevo_off.text

    # The printed hire, run as printed: it fails, and the alert reaches the mail server.
    printed = subprocess.run(["bash", "-c", failing_hire_curl(live_api.url, token)], capture_output=True, check=True)
    run_id = json.loads(printed.stdout)["run_id"]
    await drain_queue()
    run = (await client.get(f"/api/v1/tenants/{SLUG}/runs/{run_id}", headers=ADMIN)).json()
    assert run["status"] == "failed"
    [mail] = await smtp_sink.wait_for(1)
    assert (mail.recipients, mail.message["Subject"]) == (["hr@acme.fr"], "[Acme (demo)] Softgarden hires are failing")
    assert "Hugo Lefèvre: No establishment matches company 'Acme Roma'." in mail.part("plain")


async def follow(services: Services) -> None:
    """Real workers until every job queued is done, then the poller's pass (the worker's cron) and the workers
    again."""
    await drain_queue()
    await directory_poll_due({"services": services})
    await drain_queue()


def emails(cards: CardsAccount) -> set[str]:
    return {user["email"].casefold() for user in cards.users()}
