"""schemathesis, every check on, against the real server's /openapi.json: the document must hold.

`SCHEMATHESIS_MAX_EXAMPLES` (default 50) sets how many cases each operation gets; `SCHEMATHESIS_SEED` the seed.
No worker runs here, so the runs it queues never reach a partner.
"""

import asyncio
import logging
import os
import subprocess
import sys
from pathlib import Path

import asyncpg
import httpx
import pytest

from app.crypto import hash_token, new_webhook_token
from tests.factories import ADMIN, add_softgarden, create_tenant
from tests.live_server import LiveServer

pytestmark = pytest.mark.usefixtures("clean_state")
log = logging.getLogger(__name__)
SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"
MAX_EXAMPLES = os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "50")
SEED = os.environ.get("SCHEMATHESIS_SEED", "1")

# Answers that depend on what is stored, which JSON Schema cannot say: a first Taleez or Cards PUT without its secret; an
# import that neither the request nor the settings complete; a tenant's OAuth patch with nothing to merge into; what
# needs Lucca's API key on a tenant whose key a PATCH removed (hires, the statistics push); and rules JSON Schema cannot
# say either: retry-failed's `until` after its `since`, an Elevo host key or private key that parses, a password or a
# private key (not both, once merged with the stored ones).
STATE_DEPENDENT_422 = ("PUT /api/v1/tenants/{slug}/connectors/taleez", "PUT /api/v1/tenants/{slug}/connectors/cards",
                       "POST /api/v1/tenants/{slug}/taleez/imports", "PATCH /api/v1/tenants/{slug}",
                       "POST /api/v1/tenants/{slug}/runs/retry-failed", "PUT /api/v1/tenants/{slug}/connectors/elevo",
                       "PATCH /api/v1/tenants/{slug}/connectors/elevo", "PUT /api/v1/tenants/{slug}/connectors/softgarden",
                       "PATCH /api/v1/tenants/{slug}/connectors/softgarden",
                       "PATCH /api/v1/tenants/{slug}/connectors/taleez", "PATCH /api/v1/tenants/{slug}/connectors/cards",
                       "POST /api/v1/tenants/{slug}/cards/stats/sync",
                       # a Slack or Teams URL's masked form keeps a stored URL of its kind, and only that one
                       "PUT /api/v1/tenants/{slug}/alerts")  # fmt: skip
ACCEPTED_WITH_422 = '["2xx", "3xx", "401", "403", "404", "409", "422", "429"]'
# Reads of Lucca while the request waits: the test tenant's Lucca does not exist, so they answer the documented 503.
READS_LUCCA = ("GET /api/v1/tenants/{slug}/elevo/preview", "GET /api/v1/tenants/{slug}/cards/users",
               "GET /api/v1/tenants/{slug}/cards/departments")  # fmt: skip
LUCCA_DOWN = '["2xx", "3xx", "4xx", "502", "503"]'
# Lucca's events are accepted only signed with the endpoint's secret, which generated cases cannot be.
LUCCA_EVENT = "POST /integrations/webhooks/lucca/{lucca_token}"
# POST …/alerts/test sends to the tenant's channels, which generated cases may point at any host: only its example
# runs (before any generated channel is stored), and no link leads to it (test_alerts_api sends to local receivers).
ALERTS_TEST = "POST /api/v1/tenants/{slug}/alerts/test"
# Strings with NUL are generated too: every string of the document declares that it refuses NUL (a pattern), and
# the server answers 422 for one, so negative cases expect what the server does.


def config(operator_token: str, webhook_token: str, cards_token: str, lucca_token: str) -> str:
    lines = [
        # The document's own links say what a new tenant leads to; inferring more would assume that a new tenant
        # comes with connectors (a GET of one then 404s, as it should).
        "[phases.stateful.inference]",
        'algorithms = ["location-headers"]',
        "[auth.openapi.operatorToken]",
        f'bearer = "{operator_token}"',
        "[auth.openapi.softgardenWebhookToken]",
        f'bearer = "{webhook_token}"',
        # The Cards webhook's token is in its path.
        "[parameters]",
        f'"path.webhook_token" = "{cards_token}"',
        f'"path.lucca_token" = "{lucca_token}"',
        "[[operations]]",
        f'include-name = "{LUCCA_EVENT}"',
        'checks.positive_data_acceptance.expected-statuses = ["2xx", "401"]',
    ]
    lines += ["[[operations]]", f'include-name = "{ALERTS_TEST}"']
    lines += [f"phases.{phase}.enabled = false" for phase in ("coverage", "fuzzing", "stateful")]
    for name in STATE_DEPENDENT_422:
        lines += ["[[operations]]", f'include-name = "{name}"',
                  f"checks.positive_data_acceptance.expected-statuses = {ACCEPTED_WITH_422}"]  # fmt: skip
    for name in READS_LUCCA:
        lines += ["[[operations]]", f'include-name = "{name}"',
                  f"checks.not_a_server_error.expected-statuses = {LUCCA_DOWN}"]  # fmt: skip
    return "\n".join(lines) + "\n"


async def test_the_openapi_document_holds(client: httpx.AsyncClient, live_api: LiveServer, tmp_path: Path) -> None:
    tenant = await add_softgarden(client, await create_tenant(client, "acme", oauth={"client_id": "c",
                                                                                      "client_secret": "s"}))  # fmt: skip
    taleez = {"api_base_url": "http://127.0.0.1:9/taleez", "api_secret": "taleez-secret", "default_establishment_id": 1,
              "default_department_id": 10, "default_role_principal_id": 55,
              "professional_email_template": "{first_name}.{last_name}@acme.fr"}  # fmt: skip
    put = await client.put("/api/v1/tenants/acme/connectors/taleez", json={"settings": taleez}, headers=ADMIN)
    assert put.status_code == 200, put.text
    assert tenant.webhook_token
    # Learning events go to a tenant of their own, so the cards listings of acme are left as they are.
    await create_tenant(client, "learning")
    cards = {"settings": {"api_base_url": "http://127.0.0.1:9/cards", "api_token": "t", "space_id": "s"}}
    put = await client.put("/api/v1/tenants/learning/connectors/cards", json={"enabled": True, **cards}, headers=ADMIN)
    assert put.status_code == 200, put.text
    config_file = tmp_path / "schemathesis.toml"
    lucca_token = await arm_lucca_webhook("learning")
    config_file.write_text(
        config("test-operator-token", tenant.webhook_token, put.json()["webhook_token"], lucca_token)
    )
    command = [str(SCHEMATHESIS), "--config-file", str(config_file), "run", f"{live_api.url}/openapi.json",
               "--checks", "all", "--seed", SEED, "--max-examples", MAX_EXAMPLES, "--generation-allow-x00", "true",
               "--generation-database", "none", "--no-color", "--report", "junit", "--report-dir", str(tmp_path)]  # fmt: skip
    done = await asyncio.to_thread(subprocess.run, command, capture_output=True, text=True, timeout=900, cwd=tmp_path)
    summary = done.stdout[done.stdout.find("=== SUMMARY") - 40 :] if "=== SUMMARY" in done.stdout else done.stdout
    log.info("schemathesis %s", summary)  # the figures, in the captured log (shown on failure)
    assert done.returncode == 0, done.stdout[-20000:] + done.stderr[-5000:]


async def arm_lucca_webhook(slug: str) -> str:
    """The tenant's Lucca webhook URL token, as a registration leaves it (the echo answers with it)."""
    token = new_webhook_token()
    connection = await asyncpg.connect(os.environ["DATABASE_URL"].replace("+asyncpg", ""))
    try:
        await connection.execute(
            """
            INSERT INTO directory_states (tenant_id, sync_progress, webhook_status, webhook_token_hash, notices,
                                          updated_at)
            SELECT id, 0, 'active', $2, '[]', now() FROM tenants WHERE slug = $1
            ON CONFLICT (tenant_id) DO UPDATE SET webhook_status = 'active', webhook_token_hash = $2
            """,
            slug,
            hash_token(token),
        )
    finally:
        await connection.close()
    return token
