"""Alert problems (contract 14): what is wrong for the tenant now, or was, and the alerts sent about it."""

from typing import Annotated

from fastapi import APIRouter, Query, Request

from app.alerts.reads import list_problems
from app.auth import TenantDep
from app.db import SessionDep
from app.errors import answers
from app.schemas.alert_problems import ProblemList, ProblemStatus

router = APIRouter(prefix="/api/v1/tenants/{slug}/alerts/problems", tags=["alerts"])


@router.get("", response_model=ProblemList, responses=answers(401, 404, 422))
async def list_alert_problems(
    request: Request,
    tenant: TenantDep,
    session: SessionDep,
    status: Annotated[ProblemStatus | None, Query(description="Only the open, or only the resolved ones.")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> ProblemList:
    """The tenant's problems, newest first, each with its alerts (their attempts and errors) and its latest run."""
    public_base_url = request.app.state.settings.public_base_url
    return await list_problems(session, tenant, status, limit, public_base_url)
