"""Cards users and departments: what can be imported, and the imports."""

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import TenantDep
from app.db import SessionDep
from app.errors import answers
from app.json_body import json_body, openapi_body
from app.models import Tenant
from app.queue import commit_then_enqueue
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

router = APIRouter(prefix="/api/v1/tenants/{slug}/cards", tags=["cards"])
NO_CONNECTOR = {409: "The Cards connector is missing or disabled."}
LISTING_ANSWERS = answers(401, 404, 409, 422, described=NO_CONNECTOR)
IMPORT_ANSWERS = answers(401, 404, 408, 409, 413, 415, 422, described=NO_CONNECTOR)


@router.get("/users", response_model=CardsUserList, responses=LISTING_ANSWERS)
async def list_users(
    request: Request, tenant: TenantDep, session: SessionDep, status: CardsUserStatus | None = None
) -> Response:
    """Every current Lucca employee, whether imported into Cards, and whether they can be (an e-mail, unique).
    Read from the service's copy of Lucca's directory: empty, with `directory.status` `loading`, until its first
    full sync completes."""
    listing = await cards_users.users_listing(session, request.app.state.services.box, tenant, status)
    return Response(listing, media_type="application/json")


@router.get("/departments", response_model=CardsDepartmentList, responses=LISTING_ANSWERS)
async def list_departments(request: Request, tenant: TenantDep, session: SessionDep) -> CardsDepartmentList:
    """Every active Lucca department, its current employees counted, and whether it is a Cards group yet (from
    the directory's copy, like the users listing)."""
    return await cards_users.departments_listing(session, request.app.state.services.box, tenant)


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
