"""Cards users and departments: what can be imported, and the imports."""

import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import TenantDep
from app.db import SessionDep
from app.errors import answers
from app.json_body import json_body, openapi_body
from app.models import Tenant
from app.queue import commit_then_enqueue
from app.routers.partner_reads import lucca_read_answers, partner_answers
from app.schemas.cards_imports import (
    DEPARTMENTS_IMPORT_EXAMPLES,
    USERS_IMPORT_EXAMPLES,
    CardsDepartmentList,
    CardsUserList,
    CardsUserStatus,
    DepartmentsImport,
    UsersImport,
)
from app.schemas.run import RunAccepted
from app.services import cards_users
from app.services.connectors import enabled_connector
from app.services.context import Services
from app.services.links import group_links, user_links

router = APIRouter(prefix="/api/v1/tenants/{slug}/cards", tags=["cards"])
NO_CONNECTOR = {409: "The Cards connector is missing or disabled."}
LISTING_ANSWERS = lucca_read_answers("Cards")
IMPORT_ANSWERS = answers(401, 404, 408, 409, 413, 415, 422, described=NO_CONNECTOR)


LinkReader = Callable[[AsyncSession, uuid.UUID, str], Awaitable[dict[int, int]]]


async def space_links(
    request: Request, session: AsyncSession, tenant: Tenant, read_links: LinkReader
) -> dict[int, int]:
    """The connector's links in its Cards space. The request's database connection goes back to the pool before
    Lucca is read: its rate limit may keep the listing waiting."""
    services: Services = request.app.state.services
    settings = cards_users.cards_settings(services.box, await enabled_connector(session, tenant, cards_users.SOURCE))
    links = await read_links(session, tenant.id, settings.space_id)
    await session.commit()
    return links


@router.get("/users", response_model=CardsUserList, responses=LISTING_ANSWERS)
async def list_users(
    request: Request, tenant: TenantDep, session: SessionDep, status: CardsUserStatus | None = None
) -> CardsUserList:
    """Every current Lucca employee, whether imported into Cards, and whether they can be (an e-mail, unique)."""
    links = await space_links(request, session, tenant, user_links)
    with partner_answers():
        employees = await cards_users.tenant_employees(request.app.state.services, tenant)
    return CardsUserList(items=cards_users.user_rows(employees, links, status))


@router.get("/departments", response_model=CardsDepartmentList, responses=LISTING_ANSWERS)
async def list_departments(request: Request, tenant: TenantDep, session: SessionDep) -> CardsDepartmentList:
    """Every active Lucca department, its current employees counted, and whether it is a Cards group yet."""
    links = await space_links(request, session, tenant, group_links)
    with partner_answers():
        lucca = request.app.state.services.lucca(tenant)
        departments = await lucca.list_departments()
        employees = await cards_users.current_employees(lucca)
    return CardsDepartmentList(items=cards_users.department_rows(departments, employees, links))


async def queue(
    request: Request, session: AsyncSession, tenant: Tenant, operation: str, body: UsersImport | DepartmentsImport
) -> RunAccepted:
    """Store the import's run, commit, then queue it (the sweep queues it if Redis is down)."""
    run = await cards_users.queue_import(session, tenant, operation, body)
    await commit_then_enqueue(session, request.app.state.services.redis, run.id)
    return RunAccepted(run_id=run.id)


@router.post(
    "/users/import",
    status_code=202,
    response_model=RunAccepted,
    responses=IMPORT_ANSWERS,
    openapi_extra=openapi_body(UsersImport, USERS_IMPORT_EXAMPLES),
)
async def import_users(
    request: Request,
    tenant: TenantDep,
    session: SessionDep,
    body: Annotated[UsersImport, Depends(json_body(UsersImport))],
) -> RunAccepted:
    """Import current employees into Cards as a run: a Cards user with the same e-mail is linked, not created;
    who cannot be imported is skipped with the reason."""
    return await queue(request, session, tenant, cards_users.USERS_IMPORT, body)


@router.post(
    "/departments/import",
    status_code=202,
    response_model=RunAccepted,
    responses=IMPORT_ANSWERS,
    openapi_extra=openapi_body(DepartmentsImport, DEPARTMENTS_IMPORT_EXAMPLES),
)
async def import_departments(
    request: Request,
    tenant: TenantDep,
    session: SessionDep,
    body: Annotated[DepartmentsImport, Depends(json_body(DepartmentsImport))],
) -> RunAccepted:
    """Import departments as Cards groups of the same name, as a run: each current member gets a Cards account
    if missing and joins the group, keeping the groups they already have."""
    return await queue(request, session, tenant, cards_users.DEPARTMENTS_IMPORT, body)
