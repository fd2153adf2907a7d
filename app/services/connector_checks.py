"""Check connection: one cheap call to each partner a connector uses, answered in plain words; nothing changes but
the partner's credentials problem (contract 14), opened by a refusal and resolved by a call that went through.

Each kind lists its checks (`CHECKS`); a check makes one call without retrying (a person is waiting), within the
partner's shared rate limit, and turns what happened into a sentence that says what to fix, and where.
"""

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from app.alerts.sources import credentials_seen
from app.clients.http import PartnerAuthFailed, PartnerError, PartnerUnavailable, host_of
from app.clients.sftp import PARTNER as ELEVO
from app.clients.taleez import TaleezClient
from app.models import Connector, Tenant
from app.schemas.cards import CardsSettings
from app.schemas.console import ConnectorCheck, PartnerCheck
from app.services.connectors import SettingsOutdated, connector_settings
from app.services.context import Services
from app.services.elevo import elevo_settings, sftp_client

# A check waits at most this long, its turn in the partner's rate limit included.
CHECK_SECONDS = 30.0
# What to fix when a partner refuses the credentials (the Cards client's own refusal already says it).
AUTH_ADVICE = {
    "lucca": "Lucca refused the API key: check it in Lucca's API keys settings (and that it may read users).",
    "taleez": "Taleez refused the API secret: check it in Taleez's API settings.",
}

PartnerCall = Callable[[Services, Tenant, Connector], Awaitable[str]]


async def call_lucca(services: Services, tenant: Tenant, connector: Connector) -> str:
    """`GET /api/v3/users?fields=id&paging=0,1`: one user id, which needs the key to read users; without a key,
    `GET /lucca-api/employees?limit=1` through the OAuth API (and a token request, which Lucca does not count)."""
    if tenant.lucca_api_key_encrypted is not None:
        await first_page(services.lucca(tenant).user_pages(fields=("id",), former_employees=False, page_size=1))
        return f"Lucca at {host_of(tenant.lucca_base_url)} accepted the API key."
    v5 = services.lucca_v5(tenant)
    try:
        await v5.get("/lucca-api/employees", {"limit": "1"})
    except PartnerAuthFailed as refused:
        # Its words name the refused client or the missing scope: not the API key's advice.
        raise PartnerError(refused.partner, refused.message) from None
    client = v5.client_id
    return f"Lucca at {host_of(tenant.lucca_base_url)} accepted the OAuth client {client!r} (it may read employees)."


async def call_taleez(services: Services, tenant: Tenant, connector: Connector) -> str:
    settings = connector_settings(services.box, connector)
    client = TaleezClient(services.http, settings.api_base_url, settings.api_secret, retry=services.retry)
    await client.check_access()
    return f"Taleez at {host_of(settings.api_base_url)} accepted the API secret."


async def call_cards(services: Services, tenant: Tenant, connector: Connector) -> str:
    """The first page of users (the client reads pages of up to 500: one call)."""
    settings: CardsSettings = connector_settings(services.box, connector)
    await first_page(services.cards(settings).user_pages())
    return f"Cards at {host_of(settings.api_base_url)} accepted the API token for space {settings.space_id}."


async def call_elevo(services: Services, tenant: Tenant, connector: Connector) -> str:
    """Sign in to the SFTP server (its host key checked against the pinned one) and look at the upload directory."""
    settings = elevo_settings(services.box, connector)
    await sftp_client(services, settings).check()
    sftp = settings.sftp
    return (
        f"Elevo's SFTP server at {sftp.host} accepted the sign-in, and the upload directory {sftp.remote_dir} is there."
    )


async def first_page(pages: AsyncIterator[Any]) -> None:
    """Read a listing's first page only: one call, whatever the listing's size."""
    async for _ in pages:
        break


CHECKS: dict[str, tuple[tuple[str, PartnerCall], ...]] = {
    "softgarden": (("lucca", call_lucca),),
    "taleez": (("lucca", call_lucca), ("taleez", call_taleez)),
    "cards": (("lucca", call_lucca), ("cards", call_cards)),
    "elevo": (("lucca", call_lucca), (ELEVO, call_elevo)),
}


async def check_connector(services: Services, tenant: Tenant, connector: Connector) -> ConnectorCheck:
    """Each partner of the connector, one call each, one after the other (each within its own rate limit)."""
    # No retry inside the call: a refusal or an outage is reported at once.
    checking = dataclasses.replace(services, retry=dataclasses.replace(services.retry, in_call_seconds=0))
    checks = [
        await check_partner(partner, call, checking, tenant, connector) for partner, call in CHECKS[connector.kind]
    ]
    return ConnectorCheck(ok=all(check.ok for check in checks), checks=checks)


async def check_partner(
    partner: str, call: PartnerCall, services: Services, tenant: Tenant, connector: Connector
) -> PartnerCheck:
    name = partner.capitalize()
    try:
        async with asyncio.timeout(CHECK_SECONDS):
            message = await call(services, tenant, connector)
    except TimeoutError:
        message = f"{name} did not answer within {CHECK_SECONDS:g} s (its rate limit may be taken by running work)."
        return PartnerCheck(partner=partner, ok=False, message=message)
    except PartnerAuthFailed as refused:
        advice = AUTH_ADVICE.get(partner)
        message = f"{advice} ({refused.message})" if advice else refused.message
        await credentials_seen(services, tenant.id, partner, refused.message)
        return PartnerCheck(partner=partner, ok=False, message=message)
    except PartnerUnavailable as outage:
        return PartnerCheck(partner=partner, ok=False, message=f"{outage.message}: try again in a few minutes.")
    except PartnerError as refusal:
        return PartnerCheck(partner=partner, ok=False, message=refusal.message)
    except SettingsOutdated as outdated:
        return PartnerCheck(partner=partner, ok=False, message=outdated.detail)
    await credentials_seen(services, tenant.id, partner, None)
    return PartnerCheck(partner=partner, ok=True, message=message)
