"""Tenants: the operator creates and changes them; a tenant's key reads its own, rotates itself and manages the
tenant's console links."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from app.auth import Caller, TenantDep, require_key_or_operator, require_operator
from app.db import SessionDep
from app.errors import answers
from app.json_body import ReceivedBodyDep, json_body, openapi_body, read_json
from app.queue import enqueue_purge
from app.schemas.common import SLUG_PATTERN
from app.schemas.console import ConsoleLinkCreate, ConsoleLinkCreated, ConsoleLinkList, ConsoleLinkRead, TenantPage
from app.schemas.tenant import TENANT_EXAMPLE, TenantCreate, TenantCreated, TenantKey, TenantRead, TenantUpdate
from app.services import console_links, tenants
from app.services.console_links import MAX_LIVE_LINKS

router = APIRouter(prefix="/api/v1/tenants", tags=["tenants"])
# Declared after the tenant, so another tenant's key gets 404 before its own gets 403.
OperatorDep = Annotated[Caller, Depends(require_operator)]
KeyOrOperatorDep = Annotated[Caller, Depends(require_key_or_operator)]
# What a new tenant's slug leads to (OpenAPI links, which /docs shows and schemathesis follows).
TENANT_LINKS = {
    name: {"operationId": operation, "parameters": {"slug": "$response.body#/slug"}}
    for name, operation in (
        ("ReadTenant", "read_tenant_api_v1_tenants__slug__get"),
        ("ChangeTenant", "update_tenant_api_v1_tenants__slug__patch"),
        ("DeleteTenant", "delete_tenant_api_v1_tenants__slug__delete"),
        ("SetUpSoftgarden", "put_softgarden_connector_api_v1_tenants__slug__connectors_softgarden_put"),
        ("SetUpTaleez", "put_taleez_connector_api_v1_tenants__slug__connectors_taleez_put"),
        ("ListRuns", "list_runs_api_v1_tenants__slug__runs_get"),
        ("RotateKey", "rotate_key_api_v1_tenants__slug__rotate_key_post"),
        ("MakeConsoleLink", "create_console_link_api_v1_tenants__slug__console_links_post"),
        ("ListConsoleLinks", "list_console_links_api_v1_tenants__slug__console_links_get"),
        ("SetAlerts", "put_alerts_api_v1_tenants__slug__alerts_put"),
        ("ReadAlerts", "read_alerts_api_v1_tenants__slug__alerts_get"),
    )
}
# What a new console link's id leads to.
CONSOLE_LINK_LINKS = {
    "EndConsoleLink": {
        "operationId": "end_console_link_api_v1_tenants__slug__console_links__link_id__delete",
        "parameters": {"slug": "$request.path.slug", "link_id": "$response.body#/id"},
    }
}
OPERATOR_ONLY = {403: "Only the operator may do this (a tenant key may not)."}
CONSOLE_TOKEN = {403: "A console link's token may not do this: the tenant key or the operator may."}
CHANGED_MEANWHILE = {409: "Another request rotated the key or deleted the tenant at the same moment: nothing changed."}
TOO_MANY_LINKS = {409: f"The tenant has {MAX_LIVE_LINKS} live console links: end some first."}
NO_LIVE_LINK = {404: "No such tenant (or one the caller may not see), or no live console link of it with this id."}


@router.post(
    "",
    status_code=201,
    response_model=TenantCreated,
    responses={
        **answers(401, 403, 408, 409, 413, 415, 422, described={**OPERATOR_ONLY, 409: "The slug is taken."}),
        201: {"description": "Created; the answer carries the tenant key, this once.", "links": TENANT_LINKS},
    },
    openapi_extra=openapi_body(TenantCreate, {"acme": TENANT_EXAMPLE}),
)
async def create_tenant(
    request: Request,
    _: OperatorDep,
    session: SessionDep,
    body: Annotated[TenantCreate, Depends(json_body(TenantCreate))],
) -> TenantCreated:
    """Create a tenant (one Lucca account); the answer carries the tenant key, this once."""
    state = request.app.state
    return await tenants.create_tenant(session, state.services.box, body, state.settings.allow_http_upstreams)


@router.get("", response_model=TenantPage, responses=answers(401, 403, 422, described=OPERATOR_ONLY))
async def list_tenants(
    _: OperatorDep,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    after: Annotated[str | None, Query(pattern=SLUG_PATTERN, description="The `next` of the page before.")] = None,
) -> TenantPage:
    """List the tenants by slug, a page at a time."""
    items, following = await tenants.list_tenants(session, limit, after)
    return TenantPage(items=items, next=following)


@router.get("/{slug}", response_model=TenantRead, responses=answers(401, 404, 422))
async def read_tenant(tenant: TenantDep) -> TenantRead:
    """Read a tenant; secrets show only as `api_key_set` and `oauth_set`."""
    return tenants.read_tenant(tenant)


@router.patch(
    "/{slug}",
    response_model=TenantRead,
    responses=answers(401, 403, 404, 408, 413, 415, 422, described=OPERATOR_ONLY),
    openapi_extra=openapi_body(
        TenantUpdate, {"rename": {"name": "Acme Group", "lucca": {"rate_limit": {"requests": 30}}}}
    ),
)
async def update_tenant(
    request: Request,
    tenant: TenantDep,
    _: OperatorDep,
    session: SessionDep,
    body: Annotated[TenantUpdate, Depends(json_body(TenantUpdate))],
) -> TenantRead:
    """Change any subset of a tenant (not its slug); nested objects merge, secrets change only when given."""
    state = request.app.state
    return await tenants.update_tenant(session, tenant, state.services.box, body, state.settings.allow_http_upstreams)


@router.delete("/{slug}", status_code=204, responses=answers(401, 403, 404, 422, described=OPERATOR_ONLY))
async def delete_tenant(request: Request, tenant: TenantDep, _: OperatorDep, session: SessionDep) -> Response:
    """Delete a tenant with its connectors, runs, links and schedules. It is gone from this answer on (its key,
    console links and webhook tokens refused, its slug free); its rows are removed in the background."""
    await tenants.delete_tenant(session, tenant)
    await session.commit()
    await enqueue_purge(request.app.state.services.redis, tenant.id)
    return Response(status_code=204)


@router.post(
    "/{slug}/rotate-key",
    response_model=TenantKey,
    responses=answers(401, 403, 404, 409, 422, described={**CONSOLE_TOKEN, **CHANGED_MEANWHILE}),
)
async def rotate_key(tenant: TenantDep, _: KeyOrOperatorDep, session: SessionDep) -> TenantKey:
    """Issue a new tenant key, returned this once; the old one stops working at once, and so do the console links
    the tenant key made (those the operator made stay)."""
    return TenantKey(api_key=await tenants.rotate_key(session, tenant))


async def console_link_body(request: Request, received: ReceivedBodyDep) -> ConsoleLinkCreate:
    """The body is optional: none at all means the default lifetime."""
    if not received.content and received.problem is None:
        return ConsoleLinkCreate()
    return read_json(ConsoleLinkCreate, request, received)


@router.post(
    "/{slug}/console-links",
    status_code=201,
    response_model=ConsoleLinkCreated,
    responses={
        **answers(401, 403, 404, 408, 409, 413, 415, 422, described={**CONSOLE_TOKEN, **TOO_MANY_LINKS}),
        201: {"description": "Made; the URL carries the token, this once.", "links": CONSOLE_LINK_LINKS},
    },
    openapi_extra={
        "requestBody": {
            **openapi_body(ConsoleLinkCreate, {"an hour": {"ttl_seconds": 3600}})["requestBody"],
            "required": False,
        }
    },
)
async def create_console_link(
    request: Request,
    tenant: TenantDep,
    caller: KeyOrOperatorDep,
    session: SessionDep,
    body: Annotated[ConsoleLinkCreate, Depends(console_link_body)],
) -> ConsoleLinkCreated:
    """A console link for this tenant: a URL whose fragment carries a token that acts as the tenant's key until
    it expires (default an hour). The operator or the tenant's key may make one; a console token may not, so a
    link never outlives its expiry."""
    base_url = str(request.base_url)
    link, url = await console_links.create_console_link(session, tenant, body.ttl_seconds, base_url, caller.minted_by)
    return ConsoleLinkCreated(url=url, expires_at=link.expires_at, id=link.id)


@router.get("/{slug}/console-links", response_model=ConsoleLinkList, responses=answers(401, 404, 422))
async def list_console_links(tenant: TenantDep, session: SessionDep) -> ConsoleLinkList:
    """The tenant's live console links, newest first: when each was made, until when it works and who made it
    (never its token)."""
    links = await console_links.list_console_links(session, tenant)
    return ConsoleLinkList(items=[ConsoleLinkRead.model_validate(link, from_attributes=True) for link in links])


@router.delete(
    "/{slug}/console-links/{link_id:uuid}",
    status_code=204,
    responses=answers(401, 403, 404, 422, described={**CONSOLE_TOKEN, **NO_LIVE_LINK}),
)
async def end_console_link(link_id: uuid.UUID, tenant: TenantDep, _: KeyOrOperatorDep, session: SessionDep) -> Response:
    """End one console link at once: its token is refused from this answer on."""
    await console_links.end_console_link(session, tenant, link_id)
    return Response(status_code=204)


@router.delete("/{slug}/console-links", status_code=204, responses=answers(401, 403, 404, 422, described=CONSOLE_TOKEN))
async def end_console_links(tenant: TenantDep, _: KeyOrOperatorDep, session: SessionDep) -> Response:
    """End every live console link of the tenant at once."""
    await console_links.end_console_links(session, tenant)
    return Response(status_code=204)
