"""Partner webhooks: authenticated by the connector's token, stored durably, then answered."""

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from app.auth import bearer_token, webhook_connector
from app.db import SessionDep
from app.json_body import json_body, openapi_body
from app.models import Connector, Tenant
from app.queue import enqueue_run
from app.schemas.run import WebhookAccepted
from app.schemas.softgarden import HIRE_EXAMPLE, SoftgardenHire
from app.services import softgarden

router = APIRouter(prefix="/integrations/webhooks", tags=["webhooks"])


async def softgarden_connector(request: Request, session: SessionDep) -> Connector:
    return await webhook_connector("softgarden", bearer_token(request), session)


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
    connector: Annotated[Connector, Depends(softgarden_connector)],
    session: SessionDep,
    candidate: Annotated[SoftgardenHire, Depends(json_body(SoftgardenHire))],
) -> WebhookAccepted:
    """A candidate moved to a status; a hire becomes a Lucca employee (Authorization: Bearer <webhook token>)."""
    tenant = await session.get(Tenant, connector.tenant_id)
    assert tenant is not None
    run, duplicate = await softgarden.receive_hire(session, tenant, connector, candidate)
    # Answer only once the delivery is committed; only then may a worker see it.
    await session.commit()
    if duplicate:
        response.status_code = 200
    elif run.status == "queued":
        await enqueue_run(request.app.state.services.redis, run.id)
    return WebhookAccepted(run_id=run.id, duplicate=duplicate)
