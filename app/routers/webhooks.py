"""Partner webhooks: authenticated by the connector's token, stored durably, then answered."""

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy.ext.asyncio import AsyncConnection

from app.auth import WebhookTarget, bearer_token, webhook_target
from app.json_body import json_body, openapi_body
from app.queue import enqueue_run
from app.schemas.run import WebhookAccepted
from app.schemas.softgarden import HIRE_EXAMPLE, SoftgardenHire
from app.services import softgarden

router = APIRouter(prefix="/integrations/webhooks", tags=["webhooks"])


async def webhook_connection(request: Request) -> AsyncIterator[AsyncConnection]:
    """One connection for the whole delivery: the token lookup, then the inserts, in one transaction."""
    async with request.app.state.services.engine.connect() as connection:
        yield connection


ConnectionDep = Annotated[AsyncConnection, Depends(webhook_connection)]


async def softgarden_target(request: Request, connection: ConnectionDep) -> WebhookTarget:
    return await webhook_target(connection, "softgarden", bearer_token(request))


@router.post(
    "/softgarden/candidate-hired",
    status_code=202,
    response_model=WebhookAccepted,
    responses={200: {"model": WebhookAccepted, "description": "A duplicate: the first run's id."}},
    openapi_extra=openapi_body(SoftgardenHire, {"hired": HIRE_EXAMPLE}),
)
async def softgarden_candidate_hired(
    request: Request,
    response: Response,
    connection: ConnectionDep,
    target: Annotated[WebhookTarget, Depends(softgarden_target)],
    candidate: Annotated[SoftgardenHire, Depends(json_body(SoftgardenHire))],
) -> WebhookAccepted:
    """A candidate moved to a status; a hire becomes a Lucca employee (Authorization: Bearer <webhook token>)."""
    services = request.app.state.services
    receipt = await softgarden.receive_hire(connection, target, candidate)
    await connection.commit()
    # Committed: only now may a worker see the run, and only now is the delivery answered.
    if receipt.duplicate:
        response.status_code = 200
    elif receipt.queued:
        await enqueue_run(services.redis, receipt.run_id)
    return WebhookAccepted(run_id=receipt.run_id, duplicate=receipt.duplicate)
