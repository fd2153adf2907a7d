"""The demo tenant as `scripts/run.sh` sets it up (`app/sandbox/demo_tenant.py`), through the live API against the
sandbox: its connectors as the demo needs them, Cards and Elevo following Lucca, and the hire its output prints
accepted by the sandbox's Lucca as printed."""

import json
import subprocess
from datetime import date
from pathlib import Path

import httpx

from app.sandbox.demo_tenant import SLUG, lucca_hire_curl, set_up_tenant
from app.sandbox.sftp import demo_sftp
from tests.factories import ADMIN
from tests.live_server import LiveServer
from tests.sandbox_server import SandboxServer


async def test_the_demo_tenant_follows_lucca_in_cards_and_elevo(
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

    # The printed hire, run as printed, makes Nadia Roux a current employee of Engineering in the sandbox's Lucca.
    printed = subprocess.run(["bash", "-c", lucca_hire_curl(lucca.base_url)], capture_output=True, check=True)
    hired = json.loads(printed.stdout)["data"]
    assert (hired["name"], hired["department"]["name"]) == ("Nadia Roux", "Engineering")
    assert hired["dtContractStart"].startswith(date.today().isoformat())
    assert any(user["id"] == hired["id"] for user in lucca.users())
