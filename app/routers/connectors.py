"""Connectors of a tenant: settings per kind, and webhook token rotation."""

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from app.auth import TenantDep
from app.db import SessionDep
from app.json_body import json_body, openapi_body
from app.schemas.connector import SOFTGARDEN_EXAMPLE, ConnectorPut, ConnectorRead, WebhookToken
from app.services import connectors

router = APIRouter(prefix="/api/v1/tenants/{slug}/connectors", tags=["connectors"])


def known_kind(kind: str) -> str:
    connectors.connector_kind(kind)
    return kind


KindDep = Annotated[str, Depends(known_kind)]


@router.put(
    "/{kind}",
    response_model=ConnectorRead,
    # `webhook_token` appears only when there is one: on the first PUT of a kind that receives webhooks.
    response_model_exclude_none=True,
    openapi_extra=openapi_body(ConnectorPut, {"softgarden": SOFTGARDEN_EXAMPLE}),
)
async def put_connector(
    request: Request,
    tenant: TenantDep,
    kind: KindDep,
    session: SessionDep,
    body: Annotated[ConnectorPut, Depends(json_body(ConnectorPut))],
) -> ConnectorRead:
    """Create or replace a connector; the first PUT of a webhook kind returns its token, once."""
    state = request.app.state
    return await connectors.put_connector(
        session, state.services.box, tenant, kind, body, state.settings.allow_http_upstreams
    )


@router.get("/{kind}", response_model=ConnectorRead, response_model_exclude_none=True)
async def read_connector(kind: str, tenant: TenantDep, session: SessionDep) -> ConnectorRead:
    """Read a connector; secret settings show as "***"."""
    connector = await connectors.find_connector(session, tenant, kind)
    return connectors.read_connector(connector, connectors.connector_kind(kind))


@router.delete("/{kind}", status_code=204)
async def delete_connector(kind: str, tenant: TenantDep, session: SessionDep) -> Response:
    """Remove a connector (its runs stay)."""
    await session.delete(await connectors.find_connector(session, tenant, kind))
    return Response(status_code=204)


@router.post("/{kind}/rotate-token", response_model=WebhookToken)
async def rotate_token(kind: str, tenant: TenantDep, session: SessionDep) -> WebhookToken:
    """Issue a new webhook token; the old one stops working at once."""
    return WebhookToken(webhook_token=await connectors.rotate_token(session, tenant, kind))
