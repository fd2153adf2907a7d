"""Sets up the demo tenant through the service's own API and prints curls for every flow.

Run by `scripts/run.sh` once the API and the sandbox are up. The tenant is created (or updated) with the
operator token, its Softgarden connector gets a fresh webhook token, and the printed curl works as printed. Its
Lucca has the API key and the sandbox's demo OAuth client: with `PUBLIC_BASE_URL` (run.sh sets the local API),
the service registers Lucca's webhooks in the sandbox, which then delivers each change to the directory's copy.
Its Cards connector follows that copy (`auto_sync`) and its Elevo connector uploads on change (`push_on_change`):
the last curls hire someone in the sandbox's Lucca and show both following on their own. Its alerts go by e-mail to
the local SMTP sink that run.sh starts: a failed hire's alert is read there.
"""

import argparse
import json
import shlex
import sys
import uuid
from datetime import date
from typing import Any

import httpx

from app.dev.smtp_sink import DEFAULT_DIRECTORY as MAIL_DIRECTORY
from app.sandbox.demo import (
    DEMO_ACCOUNT,
    DEMO_API_KEY,
    DEMO_CARDS_ACCOUNT,
    DEMO_CARDS_SPACE,
    DEMO_CARDS_TOKEN,
    DEMO_OAUTH_CLIENT_ID,
    DEMO_OAUTH_CLIENT_SECRET,
    DEMO_TALEEZ_ACCOUNT,
    DEMO_TALEEZ_SECRET,
    USER_ROLE_ID,
)
from app.sandbox.sftp import DEFAULT_PORT, demo_sftp
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

# Where the demo's alerts go (run.sh points SMTP_URL at its local sink, which keeps every message).
ALERTS = {"channels": [{"kind": "email", "to": ["hr@acme.fr"]}]}
# A company Lucca has no establishment for: the hire fails in plain words, which opens a problem and sends an alert.
FAILING_COMPANY = "Acme Roma"


def taleez_connector(taleez_url: str) -> dict[str, Any]:
    settings = {"api_base_url": taleez_url, "api_secret": DEMO_TALEEZ_SECRET, "default_establishment_id": 1}
    return {"enabled": True, "settings": {**SOFTGARDEN["settings"], **settings}}


# Cards follows the directory: everyone current is a Cards user, the departments imported as groups (Engineering,
# by the curl below) keep their members, and a leaver keeps their Cards user (their learning history) but leaves
# those groups: the demo shows every rule at work without deleting anything.
AUTO_SYNC = {"users": True, "departments": "imported", "leavers": "remove_from_groups"}
# Someone an HR tool hires in the sandbox's Lucca (its v3 API), whom Cards and Elevo then follow on their own.
NEW_HIRE = {"firstName": "Nadia", "lastName": "Roux", "mail": "nadia.roux@acme.fr", "login": "nadia.roux@acme.fr",
            "legalEntityId": 1, "departmentId": 10, "rolePrincipalId": USER_ROLE_ID, "managerId": 100,
            "jobTitle": "Data analyst"}  # fmt: skip


def cards_connector(cards_url: str) -> dict[str, Any]:
    settings = {"api_base_url": cards_url, "api_token": DEMO_CARDS_TOKEN, "space_id": DEMO_CARDS_SPACE}
    return {
        "enabled": True,
        "settings": {**settings, "stats_sync": {"enabled": True, "hour": 2}, "auto_sync": AUTO_SYNC},
    }


def learning_event() -> dict[str, Any]:
    """A Cards `chapter-complete` event (partners.md 3.2): Jean Dupont finishes the demo's training 501."""
    return {
        "id": f"demo-{uuid.uuid4().hex[:8]}",
        "type": "chapter-complete",
        "created_at": "2026-12-01 09:10:00",
        "data": {
            "created_at": "2026-12-01 09:09:00",
            "points": 1,
            "user": {"id": 2, "firstname": "Jean", "lastname": "Dupont", "email": "jean.dupont@acme.fr"},
            "training": {"id": 501, "title": "Cybersecurity basics", "chapters_count": 1,
                         "chapter": {"id": 5011, "title": "Passwords", "position": 1}},
            "score": {"points": 1, "max_points": 1, "progress": 1.0},
        },
    }  # fmt: skip


def elevo_connector(sftp: dict[str, object]) -> dict[str, Any]:
    # The nightly schedule stays off in the demo: the file goes when asked for (the curl below) and on each change
    # that changes it, a minute at least after the previous one (10 by default), so that the demo shows it soon.
    return {"enabled": True, "settings": {"sftp": sftp, "extra_columns": {"department_code": "departmentId"},
                                          "schedule_enabled": False, "push_on_change": True,
                                          "min_interval_minutes": 1}}  # fmt: skip


def set_up_tenant(
    api: httpx.Client, lucca_url: str, taleez_url: str, cards_url: str, sftp: dict[str, object]
) -> tuple[str, str]:
    """Create or refresh the demo tenant; return fresh Softgarden and Cards webhook tokens."""
    oauth = {"client_id": DEMO_OAUTH_CLIENT_ID, "client_secret": DEMO_OAUTH_CLIENT_SECRET,
             "token_url": f"{lucca_url}/connect/token"}  # fmt: skip
    lucca = {"base_url": lucca_url, "api_key": DEMO_API_KEY, "oauth": oauth,
             "rate_limit": {"requests": 50, "per_seconds": 60}}  # fmt: skip
    created = api.post("/api/v1/tenants", json={"slug": SLUG, "name": "Acme (demo)", "lucca": lucca})
    if created.status_code == 409:
        api.patch(f"/api/v1/tenants/{SLUG}", json={"lucca": lucca}).raise_for_status()
    else:
        created.raise_for_status()
    api.put(f"/api/v1/tenants/{SLUG}/connectors/softgarden", json=SOFTGARDEN).raise_for_status()
    api.put(f"/api/v1/tenants/{SLUG}/connectors/taleez", json=taleez_connector(taleez_url)).raise_for_status()
    api.put(f"/api/v1/tenants/{SLUG}/connectors/cards", json=cards_connector(cards_url)).raise_for_status()
    api.put(f"/api/v1/tenants/{SLUG}/connectors/elevo", json=elevo_connector(sftp)).raise_for_status()
    api.put(f"/api/v1/tenants/{SLUG}/alerts", json=ALERTS).raise_for_status()
    softgarden, cards = (rotated_token(api, kind) for kind in ("softgarden", "cards"))
    return softgarden, cards


def rotated_token(api: httpx.Client, kind: str) -> str:
    """A fresh webhook token (the demo may have been set up before: the first one is not shown again)."""
    rotated = api.post(f"/api/v1/tenants/{SLUG}/connectors/{kind}/rotate-token")
    rotated.raise_for_status()
    token: str = rotated.json()["webhook_token"]
    return token


def post_curl(url: str, auth: str, body: str) -> str:
    """A POST of a JSON body; `auth` is the quoted Authorization header, or empty when the URL carries a token."""
    header = f" -H {auth}" if auth else ""
    return f"curl -sS -X POST {url}{header} -H 'Content-Type: application/json' -d {shlex.quote(body)}"


def hire_curl(api_url: str, token: str, **changes: str) -> str:
    body = {**HIRE_EXAMPLE, "applicationId": f"demo-{uuid.uuid4().hex[:8]}", **changes}
    url = f"{api_url}/integrations/webhooks/softgarden/candidate-hired"
    return post_curl(url, shlex.quote(f"Authorization: Bearer {token}"), json.dumps(body, ensure_ascii=False))


def failing_hire_curl(api_url: str, token: str) -> str:
    """Hugo Lefèvre's hire names a company Lucca does not know: the run fails, its problem opens, an alert goes."""
    return hire_curl(api_url, token, candidateId="c-992", firstName="Hugo", lastName="Lefèvre",
                     email="hugo.lefevre@perso.fr", company=FAILING_COMPANY)  # fmt: skip


def lucca_hire_curl(lucca_url: str) -> str:
    """Nadia Roux hired today through the sandbox's Lucca API, as an HR tool would (the demo key is public)."""
    body = {**NEW_HIRE, "dtContractStart": date.today().isoformat()}
    url = shlex.quote(f"{lucca_url}/api/v3/users?contract=true")
    auth = shlex.quote(f"Authorization: lucca application={DEMO_API_KEY}")
    return post_curl(url, auth, json.dumps(body))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--api", default="http://127.0.0.1:8000")
    parser.add_argument("--sandbox", default="http://127.0.0.1:8100")
    parser.add_argument("--sftp-port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--admin-token", required=True)
    args = parser.parse_args()
    headers = {"Authorization": f"Bearer {args.admin_token}"}
    sftp, uploads = demo_sftp(port=args.sftp_port)
    with httpx.Client(base_url=args.api, headers=headers, timeout=10) as api:
        token, cards_token = set_up_tenant(
            api,
            f"{args.sandbox}/{DEMO_ACCOUNT}",
            f"{args.sandbox}/taleez/{DEMO_TALEEZ_ACCOUNT}",
            f"{args.sandbox}/cards/{DEMO_CARDS_ACCOUNT}/v1",
            sftp,
        )
        link = api.post(f"/api/v1/tenants/{SLUG}/console-links", json={"ttl_seconds": 86_400})
        link.raise_for_status()
    admin = shlex.quote(f"Authorization: Bearer {args.admin_token}")
    tenant_api = f"{args.api}/api/v1/tenants/{SLUG}"
    cards_curls = [
        f"curl -sS {tenant_api}/cards/users -H {admin}",
        post_curl(f"{tenant_api}/cards/users/import", admin, '{"all": true}'),
        post_curl(f"{tenant_api}/cards/departments/import", admin, '{"department_ids": [10]}'),
        f"curl -sS {args.sandbox}/_sandbox/cards/accounts/{DEMO_CARDS_ACCOUNT}/users",
    ]
    # Jean Dupont (102) takes a new name in Lucca; the copy has it within seconds (webhooks) or a minute (polling).
    directory_curls = [
        f"curl -sS -X PATCH {args.sandbox}/_sandbox/lucca/accounts/{DEMO_ACCOUNT}/people/102 "
        f"-H 'Content-Type: application/json' -d '{{\"lastName\": \"Dupont-Moreau\"}}'",
        f"curl -sS {tenant_api}/cards/users -H {admin}",
        f"curl -sS {tenant_api}/lucca/directory -H {admin}",
    ]
    stats_curls = [
        post_curl(f"{args.api}/integrations/webhooks/cards/{cards_token}", "", json.dumps(learning_event())),
        post_curl(f"{tenant_api}/cards/stats/sync", admin, "{}"),
        f"curl -sS {args.sandbox}/_sandbox/lucca/accounts/{DEMO_ACCOUNT}/users",
    ]
    follow_curls = [
        lucca_hire_curl(f"{args.sandbox}/{DEMO_ACCOUNT}"),
        f"curl -sS {args.sandbox}/_sandbox/cards/accounts/{DEMO_CARDS_ACCOUNT}/users",
        f"grep nadia.roux {uploads}/users-*.csv",
        f"curl -sS '{tenant_api}/runs?connector=cards&operation=changes' -H {admin}",
    ]
    alert_curls = [
        failing_hire_curl(args.api, token),
        ".venv/bin/python -m app.dev.smtp_sink --read",
        f"curl -sS '{tenant_api}/alerts/problems?status=open' -H {admin}",
    ]  # fmt: skip
    sys.stdout.write(
        "\nThe demo tenant is ready. Hire someone (Softgarden's webhook):\n\n"
        f"  {hire_curl(args.api, token)}\n\n"
        "Import a Taleez candidate (a recruiter's tool):\n\n"
        f"  {post_curl(f'{tenant_api}/taleez/imports', admin, TALEEZ_IMPORT)}\n\n"
        "Then see the runs and the new employees:\n\n"
        f"  curl -sS {tenant_api}/runs -H {admin}\n"
        f"  curl -sS {args.sandbox}/_sandbox/lucca/accounts/{DEMO_ACCOUNT}/users\n\n"
        "Lucca's directory, kept fresh: change Jean Dupont's name in the sandbox's Lucca, then see the service's copy\n"
        "have it (the Cards users listing, which reads the copy) and how the copy is kept (mode, lag, webhook):\n\n"
        + "".join(f"  {curl}\n" for curl in directory_curls)
        + "\nCards: the users listing (auto_sync made everyone current a Cards user when the demo switched it on; a space\n"
        "without it imports them, as the second curl does), import Engineering as a group, the Cards space after:\n\n"
        + "".join(f"  {curl}\n" for curl in cards_curls)
        + "\nA learning event from Cards, the statistics push now, Jean Dupont's statistics in Lucca (extendedData):\n\n"
        + "".join(f"  {curl}\n" for curl in stats_curls)
        + "\nElevo: the people file's preview, a sync now, and the file the sandbox's SFTP server received:\n\n"
        f"  curl -sS {tenant_api}/elevo/preview -H {admin}\n"
        f"  {post_curl(f'{tenant_api}/elevo/sync', admin, '{}')}\n"
        f"  ls -l {uploads} && cat {uploads}/users-*.csv\n\n"
        "Cards and Elevo follow Lucca on their own: hire Nadia Roux into Engineering through the sandbox's Lucca API;\n"
        "within seconds she is a Cards user, in the Engineering group imported above (auto_sync); Elevo's server has\n"
        "a new file with her a minute at most after the previous one (push_on_change). What Cards' runs did:\n\n"
        + "".join(f"  {curl}\n" for curl in follow_curls)
        + "\nAlerts go by e-mail to hr@acme.fr through a local SMTP server, which keeps each message as a file in\n"
        f"{MAIL_DIRECTORY}. Hire Hugo Lefèvre for a company Lucca does not know: the hire fails, and within\n"
        "seconds the alert (what failed, how many times, the run's page in the console) is there; the problem stays\n"
        "open (the console's Alerts page lists it) until a hire succeeds, which sends one more e-mail to say so:\n\n"
        + "".join(f"  {curl}\n" for curl in alert_curls)
        + "\n"
        "The console, signed in as the demo tenant for 24 hours (the token is in the fragment, never sent):\n\n"
        f"  {link.json()['url']}\n\n"
    )


if __name__ == "__main__":
    main()
