"""Elevo: the people file's preview, and a sync now."""

from fastapi import APIRouter, Request

from app.auth import TenantDep
from app.db import SessionDep
from app.errors import answers
from app.queue import commit_then_enqueue
from app.schemas.elevo import ElevoPreview
from app.schemas.run import RunAccepted
from app.services import elevo

router = APIRouter(prefix="/api/v1/tenants/{slug}/elevo", tags=["elevo"])
NO_CONNECTOR = {409: "The Elevo connector is missing or disabled."}


@router.get("/preview", response_model=ElevoPreview, responses=answers(401, 404, 409, 422, described=NO_CONNECTOR))
async def preview(request: Request, tenant: TenantDep, session: SessionDep) -> ElevoPreview:
    """The people file a sync would upload now (rows by column) and who it leaves out, with why. Built from the
    service's copy of Lucca's directory (no Lucca call): empty, with `directory.status` `loading`, until its first
    full sync completes. Uploads nothing."""
    return await elevo.preview_people(session, request.app.state.services.box, tenant)


@router.post(
    "/sync", status_code=202, response_model=RunAccepted, responses=answers(401, 404, 409, 422, described=NO_CONNECTOR)
)
async def sync(request: Request, tenant: TenantDep, session: SessionDep) -> RunAccepted:
    """Build and upload the people file now (a run, trigger `api`); the nightly schedule does the same."""
    run = await elevo.queue_people_sync(session, tenant)
    await commit_then_enqueue(session, request.app.state.services.redis, run.id)
    return RunAccepted(run_id=run.id)
