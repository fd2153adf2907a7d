"""The tenant's copy of its Lucca directory: its state, and a full sync now."""

from fastapi import APIRouter, Request

from app.auth import TenantDep
from app.db import SessionDep
from app.directory import sync
from app.directory.overview import read_directory
from app.errors import answers
from app.queue import commit_then_enqueue
from app.schemas.directory import DirectoryRead
from app.schemas.run import RunAccepted

router = APIRouter(prefix="/api/v1/tenants/{slug}/lucca/directory", tags=["directory"])


@router.get("", response_model=DirectoryRead, responses=answers(401, 404, 422))
async def directory(tenant: TenantDep, session: SessionDep) -> DirectoryRead:
    """How full and how fresh the copy of the tenant's Lucca directory is, and how it is kept fresh. Reads no
    partner."""
    return await read_directory(session, tenant)


@router.post("/sync", status_code=202, response_model=RunAccepted, responses=answers(401, 404, 422))
async def full_sync(request: Request, tenant: TenantDep, session: SessionDep) -> RunAccepted:
    """Read the whole directory again now (a run: connector `lucca`, operation `directory_sync`, trigger `api`);
    while a full sync is queued or running, its run is answered instead of a second one."""
    run = await sync.start_full_sync(session, tenant, "api")
    await commit_then_enqueue(session, request.app.state.services.redis, run.id)
    return RunAccepted(run_id=run.id)
