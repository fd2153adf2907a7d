"""Taleez imports: a recruiter's tool asks for a candidate to become a Lucca employee."""

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from app.auth import TenantDep
from app.db import SessionDep
from app.errors import answers
from app.json_body import json_body, openapi_body
from app.queue import commit_then_enqueue
from app.schemas.run import RunAccepted
from app.schemas.taleez import IMPORT_EXAMPLES, TaleezImport
from app.services import taleez

router = APIRouter(prefix="/api/v1/tenants/{slug}/taleez", tags=["taleez"])


@router.post(
    "/imports",
    status_code=202,
    response_model=RunAccepted,
    responses=answers(
        401,
        404,
        408,
        409,
        413,
        415,
        422,
        described={
            409: "The Taleez connector is missing or disabled.",
            422: "Invalid input, or something Lucca needs is in neither the request nor the settings "
            "(establishment, department, primary role; a login: a template or the candidate's mail), or the "
            "tenant has no Lucca API key (`lucca.api_key`).",
        },
    ),
    openapi_extra=openapi_body(TaleezImport, IMPORT_EXAMPLES),
)
async def import_candidate(
    request: Request,
    tenant: TenantDep,
    session: SessionDep,
    body: Annotated[TaleezImport, Depends(json_body(TaleezImport))],
) -> RunAccepted:
    """Import a Taleez candidate (by id, or given inline) into Lucca; 422 names what is missing."""
    services = request.app.state.services
    run = await taleez.queue_import(session, services.box, tenant, body)
    await commit_then_enqueue(session, services.redis, run.id)
    return RunAccepted(run_id=run.id)
