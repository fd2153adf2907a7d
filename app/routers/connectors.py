"""Connectors of a tenant: settings per kind, and webhook token rotation.

Each kind has routes of its own, so that the OpenAPI document gives each its settings schema; the `{kind}` routes
(hidden) answer any other kind with a 404 that lists the known ones.
"""

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response

from app.auth import TenantDep
from app.db import SessionDep
from app.directory import sync as directory_sync
from app.errors import answers
from app.json_body import json_body, openapi_body
from app.models import Tenant
from app.queue import commit_then_enqueue
from app.schemas.connector import (
    CARDS_EXAMPLE,
    ELEVO_EXAMPLE,
    PATCH_EXAMPLES,
    SOFTGARDEN_EXAMPLE,
    TALEEZ_EXAMPLE,
    ConnectorPatch,
    ConnectorPut,
    ConnectorRead,
    WebhookToken,
    patch_body_schema,
    put_body_schema,
)
from app.services import connectors
from app.services.connectors import KINDS

router = APIRouter(prefix="/api/v1/tenants/{slug}/connectors", tags=["connectors"])
PutBody = Annotated[ConnectorPut, Depends(json_body(ConnectorPut))]
PatchBody = Annotated[ConnectorPatch, Depends(json_body(ConnectorPatch))]
PUT_EXAMPLES = {
    "softgarden": SOFTGARDEN_EXAMPLE,
    "taleez": TALEEZ_EXAMPLE,
    "cards": CARDS_EXAMPLE,
    "elevo": ELEVO_EXAMPLE,
}
NO_CONNECTOR = {404: "No such tenant (or one the caller may not see), or this connector is not set up."}
# `webhook_token` appears only when there is one: on the first PUT of a kind that receives webhooks.
READ: dict[str, Any] = {"response_model": ConnectorRead, "response_model_exclude_none": True}


async def change_connector(
    change: Callable[..., Awaitable[ConnectorRead]],
    request: Request,
    tenant: Tenant,
    session: SessionDep,
    kind: str,
    body: ConnectorPut | ConnectorPatch,
) -> ConnectorRead:
    """A PUT or PATCH through its service function, with the app's secret box and URL rule; the directory's copy
    follows (the first connector that reads it starts its first full sync)."""
    state = request.app.state
    connector = await change(session, state.services.box, tenant, kind, body, state.settings.allow_http_upstreams)
    await follow_directory(request, tenant, session)
    return connector


async def follow_directory(request: Request, tenant: Tenant, session: SessionDep) -> None:
    first_sync = await directory_sync.ensure_directory(session, tenant)
    if first_sync is not None:
        await commit_then_enqueue(session, request.app.state.services.redis, first_sync.id)


async def read_connector(tenant: Tenant, session: SessionDep, kind: str) -> ConnectorRead:
    connector = await connectors.find_connector(session, tenant, kind)
    return connectors.read_connector(connector, connectors.connector_kind(kind))


async def delete_connector(request: Request, tenant: Tenant, session: SessionDep, kind: str) -> Response:
    await session.delete(await connectors.find_connector(session, tenant, kind))
    await session.flush()
    await follow_directory(request, tenant, session)
    return Response(status_code=204)


async def rotate_token(tenant: Tenant, session: SessionDep, kind: str) -> WebhookToken:
    return WebhookToken(webhook_token=await connectors.rotate_token(session, tenant, kind))


def add_kind_routes(name: str) -> None:
    """The documented routes of one built kind, with its settings schema and examples."""
    kind = KINDS[name]
    path = f"/{name}"
    title = name.capitalize()

    async def put(request: Request, tenant: TenantDep, session: SessionDep, body: PutBody) -> ConnectorRead:
        return await change_connector(connectors.put_connector, request, tenant, session, name, body)

    async def patch(request: Request, tenant: TenantDep, session: SessionDep, body: PatchBody) -> ConnectorRead:
        return await change_connector(connectors.patch_connector, request, tenant, session, name, body)

    async def read(tenant: TenantDep, session: SessionDep) -> ConnectorRead:
        return await read_connector(tenant, session, name)

    async def delete(request: Request, tenant: TenantDep, session: SessionDep) -> Response:
        return await delete_connector(request, tenant, session, name)

    put_description = "Create or replace the connector with all its settings."
    if kind.receives_webhooks:
        put_description += " The first PUT returns its webhook token, this once."
    if kind.secret_fields:
        put_description += ' A secret left out or sent as "***" keeps the stored one.'
    routes: list[tuple[str, str, Callable[..., Awaitable[Any]], dict[str, Any]]] = [
        ("GET", f"Read the {title} connector", read, {**READ, "responses": answers(401, 404, 422, described=NO_CONNECTOR),
                                                       "description": 'Secret settings show as "***".'}),
        ("PUT", f"Set up the {title} connector", put, {
            **READ,
            "responses": answers(401, 404, 408, 409, 413, 415, 422, described={
                409: "The connector was being set up at the same time: send the PUT again."}),
            "description": put_description,
            "openapi_extra": openapi_body(put_body_schema(kind.settings_model, kind.secret_fields),
                                          {name: PUT_EXAMPLES[name]}),
        }),
        ("PATCH", f"Change some {title} settings", patch, {
            **READ,
            "responses": answers(401, 404, 408, 413, 415, 422, described=NO_CONNECTOR),
            "description": "Merge the given settings keys into the stored ones (null: back to the default) and "
            'validate the result like a PUT; a secret left out or sent as "***" keeps the stored one.',
            "openapi_extra": openapi_body(patch_body_schema(kind.settings_model), {name: PATCH_EXAMPLES[name]}),
        }),
        ("DELETE", f"Remove the {title} connector", delete, {
            "status_code": 204, "responses": answers(401, 404, 422, described=NO_CONNECTOR),
            "description": "Its runs stay.",
        }),
    ]  # fmt: skip
    for method, summary, endpoint, options in routes:
        router.add_api_route(
            path, endpoint, methods=[method], summary=summary, name=f"{method.lower()}_{name}_connector", **options
        )
    if kind.receives_webhooks:

        async def rotate(tenant: TenantDep, session: SessionDep) -> WebhookToken:
            return await rotate_token(tenant, session, name)

        router.add_api_route(
            f"{path}/rotate-token",
            rotate,
            methods=["POST"],
            response_model=WebhookToken,
            summary=f"Rotate the {title} webhook token",
            description="Issue a new webhook token; the old one stops working at once.",
            name=f"rotate_{name}_token",
            responses=answers(401, 404, 422, described=NO_CONNECTOR),
        )


for name in KINDS:
    add_kind_routes(name)


@router.put("/{kind}", include_in_schema=False, **READ)
async def put_other_kind(request: Request, tenant: TenantDep, kind: str, session: SessionDep, body: PutBody) -> Any:
    return await change_connector(connectors.put_connector, request, tenant, session, kind, body)


@router.patch("/{kind}", include_in_schema=False, **READ)
async def patch_other_kind(request: Request, tenant: TenantDep, kind: str, session: SessionDep, body: PatchBody) -> Any:
    return await change_connector(connectors.patch_connector, request, tenant, session, kind, body)


@router.get("/{kind}", include_in_schema=False, **READ)
async def read_other_kind(tenant: TenantDep, kind: str, session: SessionDep) -> Any:
    return await read_connector(tenant, session, kind)


@router.delete("/{kind}", include_in_schema=False, status_code=204)
async def delete_other_kind(request: Request, tenant: TenantDep, kind: str, session: SessionDep) -> Response:
    return await delete_connector(request, tenant, session, kind)


@router.post("/{kind}/rotate-token", include_in_schema=False, response_model=WebhookToken)
async def rotate_other_kind(tenant: TenantDep, kind: str, session: SessionDep) -> WebhookToken:
    return await rotate_token(tenant, session, kind)
