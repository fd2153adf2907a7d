"""Cards statistics: the push of training statistics into Lucca, on demand."""

from fastapi import APIRouter, Request

from app.auth import TenantDep
from app.db import SessionDep
from app.errors import answers
from app.queue import commit_then_enqueue
from app.schemas.run import RunAccepted
from app.services import cards_stats

router = APIRouter(prefix="/api/v1/tenants/{slug}/cards/stats", tags=["cards"])


@router.post(
    "/sync",
    status_code=202,
    response_model=RunAccepted,
    responses=answers(
        401,
        404,
        409,
        422,
        described={
            409: "The Cards connector is missing or disabled.",
            422: "The tenant has no Lucca API key (`lucca.api_key`): the push writes employees' records.",
        },
    ),
)
async def sync_statistics(request: Request, tenant: TenantDep, session: SessionDep) -> RunAccepted:
    """Push the training statistics into Lucca now (a `stats_sync` run), whether the nightly push is enabled or not.

    Only employees whose statistics changed since the last push that Lucca took are written."""
    services = request.app.state.services
    run = await cards_stats.queue_stats_sync(session, tenant)
    await commit_then_enqueue(session, services.redis, run.id)
    return RunAccepted(run_id=run.id)
