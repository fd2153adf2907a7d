"""Runs: what happened, item by item, and retrying what failed."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from app.auth import TenantDep
from app.db import SessionDep
from app.errors import answers
from app.json_body import json_body, openapi_body
from app.queue import commit_then_enqueue
from app.schemas.common import String
from app.schemas.run import (
    RETRY_FAILED_EXAMPLES,
    FailureCounts,
    RetryFailed,
    RunAccepted,
    RunEventList,
    RunList,
    RunRead,
    RunsAccepted,
    RunStatus,
)
from app.services import runs

router = APIRouter(prefix="/api/v1/tenants/{slug}/runs", tags=["runs"])
NO_RUN = {404: "No such tenant (or one the caller may not see), or no such run in it."}


@router.get("", response_model=RunList, responses=answers(401, 404, 422))
async def list_runs(
    tenant: TenantDep,
    session: SessionDep,
    connector: Annotated[String | None, Query(max_length=40)] = None,
    operation: Annotated[String | None, Query(max_length=40)] = None,
    status: RunStatus | None = None,
    subject: Annotated[
        String | None,
        Query(
            max_length=300,
            description="Runs with an event about someone whose subject holds this, ignoring case and accents "
            "(an email, a name or a Lucca id: `zoe` finds Zoë).",
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> RunList:
    """List the tenant's runs, newest first."""
    return RunList(items=await runs.list_runs(session, tenant, connector, operation, status, limit, subject))


@router.get("/failures", response_model=FailureCounts, responses=answers(401, 404))
async def failure_counts(tenant: TenantDep, session: SessionDep) -> FailureCounts:
    """Count the tenant's runs of the last 7 days that failed, per connector."""
    return await runs.failure_counts(session, tenant)


@router.post(
    "/retry-failed",
    status_code=202,
    response_model=RunsAccepted,
    responses=answers(401, 404, 408, 413, 415, 422),
    openapi_extra=openapi_body(RetryFailed, RETRY_FAILED_EXAMPLES),
)
async def retry_failed(
    request: Request,
    tenant: TenantDep,
    session: SessionDep,
    body: Annotated[RetryFailed, Depends(json_body(RetryFailed))],
) -> RunsAccepted:
    """Retry every failed or partial run created in the window whose work is not already being, or has not been,
    redone (at most 500 at a time, oldest first: call again for the rest), as if each were retried alone."""
    retries = await runs.retry_failed(session, tenant, body.since, body.until, body.connector)
    await commit_then_enqueue(session, request.app.state.services.redis, *(retry.id for retry in retries))
    return RunsAccepted(run_ids=[retry.id for retry in retries])


@router.get("/{run_id:uuid}", response_model=RunRead, responses=answers(401, 404, 422, described=NO_RUN))
async def read_run(run_id: uuid.UUID, tenant: TenantDep, session: SessionDep) -> RunRead:
    """Read one run with its counts."""
    return runs.read_run(await runs.find_run(session, tenant, run_id))


@router.get("/{run_id:uuid}/events", response_model=RunEventList, responses=answers(401, 404, 422, described=NO_RUN))
async def list_events(
    run_id: uuid.UUID,
    tenant: TenantDep,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 500,
    after: Annotated[
        String | None,
        Query(max_length=40, description="The `next` of the page before (an opaque cursor); none: from the first."),
    ] = None,
) -> RunEventList:
    """The run's events, oldest first, in plain words, a page at a time."""
    return await runs.list_events(session, tenant, run_id, limit, after)


@router.post(
    "/{run_id:uuid}/retry",
    status_code=202,
    response_model=RunAccepted,
    responses=answers(
        401, 404, 409, 422, described={**NO_RUN, 409: "The run, or its latest retry, is not one to retry."}
    ),
)
async def retry_run(request: Request, run_id: uuid.UUID, tenant: TenantDep, session: SessionDep) -> RunAccepted:
    """Re-run a failed or partial run's failed items as a new run."""
    retry = await runs.retry_run(session, tenant, run_id)
    await commit_then_enqueue(session, request.app.state.services.redis, retry.id)
    return RunAccepted(run_id=retry.id)
