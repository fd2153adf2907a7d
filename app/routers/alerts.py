"""A tenant's alert channels (contract 14): set, read, and tested with a test alert."""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.exceptions import RequestValidationError

from app.alerts import channels
from app.auth import TenantDep
from app.db import SessionDep
from app.errors import answers
from app.json_body import ReceivedBodyDep, openapi_body, read_json
from app.schemas.alerts import ALERTS_EXAMPLE, AlertsPut, AlertsRead, AlertsTested, untagged

router = APIRouter(prefix="/api/v1/tenants/{slug}/alerts", tags=["alerts"])
# `to`, `url`, `secret` and `last_alert` appear when they apply.
READ: dict[str, Any] = {"response_model": AlertsRead, "response_model_exclude_none": True}


async def alerts_body(request: Request, received: ReceivedBodyDep) -> AlertsPut:
    try:
        return read_json(AlertsPut, request, received)
    except RequestValidationError as exc:
        raise untagged(exc) from None


@router.put(
    "",
    **READ,
    responses=answers(401, 404, 408, 413, 415, 422),
    openapi_extra=openapi_body(AlertsPut, {"acme": ALERTS_EXAMPLE}),
)
async def put_alerts(
    request: Request, tenant: TenantDep, session: SessionDep, body: Annotated[AlertsPut, Depends(alerts_body)]
) -> AlertsRead:
    """Replace the tenant's alert channels. A new webhook channel's signing secret is in this answer, this once; a
    channel given again as it was keeps its id, its alerts and its secret."""
    state = request.app.state
    return await channels.put_alerts(session, state.services.box, tenant, body, state.settings)


@router.get("", **READ, responses=answers(401, 404, 422))
async def read_alerts(tenant: TenantDep, session: SessionDep) -> AlertsRead:
    """The tenant's alert channels, each with its latest alert; Slack's and Teams' URLs masked, no secret."""
    return await channels.read_alerts(session, tenant)


@router.post("/test", response_model=AlertsTested, responses=answers(401, 404, 422))
async def test_alerts(request: Request, tenant: TenantDep, session: SessionDep) -> AlertsTested:
    """Send a test alert to each channel now (not queued) and say how each went."""
    found = await channels.channels_of(session, tenant)
    # A send may take 10 s: the database connection goes back to the pool first (nothing was written).
    await session.commit()
    return await channels.test_alerts(request.app.state.services, tenant, found)
