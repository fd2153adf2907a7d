"""Sets up the demo tenant through the service's own API and prints a curl that hires someone.

Run by `scripts/run.sh` once the API and the sandbox are up. The tenant is created (or updated) with the
operator token, its Softgarden connector gets a fresh webhook token, and the printed curl works as printed.
"""

import argparse
import json
import shlex
import sys
import uuid
from typing import Any

import httpx

from app.sandbox.demo import DEMO_ACCOUNT, DEMO_API_KEY, DEMO_TALEEZ_ACCOUNT, DEMO_TALEEZ_SECRET
from app.schemas.softgarden import HIRE_EXAMPLE

SLUG = "demo"
TALEEZ_IMPORT = '{"candidate_id": 4411, "department_id": 12, "start_date": "2027-01-04"}'
SOFTGARDEN: dict[str, Any] = {
    "enabled": True,
    "settings": {
        "professional_email_template": "{first_name}.{last_name}@acme.fr",
        "default_department_id": 10,
        "default_role_principal_id": 55,
        "default_establishment_id": 1,
    },
}


def taleez_connector(taleez_url: str) -> dict[str, Any]:
    settings = {"api_base_url": taleez_url, "api_secret": DEMO_TALEEZ_SECRET, "default_establishment_id": 1}
    return {"enabled": True, "settings": {**SOFTGARDEN["settings"], **settings}}


def set_up_tenant(api: httpx.Client, lucca_url: str, taleez_url: str) -> str:
    """Create or refresh the demo tenant; return a fresh Softgarden webhook token."""
    lucca = {"base_url": lucca_url, "api_key": DEMO_API_KEY, "rate_limit": {"requests": 50, "per_seconds": 60}}
    created = api.post("/api/v1/tenants", json={"slug": SLUG, "name": "Acme (demo)", "lucca": lucca})
    if created.status_code == 409:
        api.patch(f"/api/v1/tenants/{SLUG}", json={"lucca": lucca}).raise_for_status()
    else:
        created.raise_for_status()
    api.put(f"/api/v1/tenants/{SLUG}/connectors/softgarden", json=SOFTGARDEN).raise_for_status()
    api.put(f"/api/v1/tenants/{SLUG}/connectors/taleez", json=taleez_connector(taleez_url)).raise_for_status()
    rotated = api.post(f"/api/v1/tenants/{SLUG}/connectors/softgarden/rotate-token")
    rotated.raise_for_status()
    token: str = rotated.json()["webhook_token"]
    return token


def hire_curl(api_url: str, token: str) -> str:
    body = {**HIRE_EXAMPLE, "applicationId": f"demo-{uuid.uuid4().hex[:8]}"}
    return (
        f"curl -sS -X POST {api_url}/integrations/webhooks/softgarden/candidate-hired "
        f"-H {shlex.quote('Authorization: Bearer ' + token)} -H 'Content-Type: application/json' "
        f"-d {shlex.quote(json.dumps(body, ensure_ascii=False))}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--api", default="http://127.0.0.1:8000")
    parser.add_argument("--sandbox", default="http://127.0.0.1:8100")
    parser.add_argument("--admin-token", required=True)
    args = parser.parse_args()
    headers = {"Authorization": f"Bearer {args.admin_token}"}
    with httpx.Client(base_url=args.api, headers=headers, timeout=10) as api:
        token = set_up_tenant(api, f"{args.sandbox}/{DEMO_ACCOUNT}", f"{args.sandbox}/taleez/{DEMO_TALEEZ_ACCOUNT}")
    admin = shlex.quote(f"Authorization: Bearer {args.admin_token}")
    sys.stdout.write(
        "\nThe demo tenant is ready. Hire someone (Softgarden's webhook):\n\n"
        f"  {hire_curl(args.api, token)}\n\n"
        "Import a Taleez candidate (a recruiter's tool):\n\n"
        f"  curl -sS -X POST {args.api}/api/v1/tenants/{SLUG}/taleez/imports -H {admin} "
        f"-H 'Content-Type: application/json' -d '{TALEEZ_IMPORT}'\n\n"
        "Then see the runs and the new employees:\n\n"
        f"  curl -sS {args.api}/api/v1/tenants/{SLUG}/runs -H {admin}\n"
        f"  curl -sS {args.sandbox}/_sandbox/lucca/accounts/{DEMO_ACCOUNT}/users\n\n"
    )


if __name__ == "__main__":
    main()
