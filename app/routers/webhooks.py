"""Partner webhooks: authenticated by the connector's token, stored durably, then answered."""

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse

from app.auth import WEBHOOK_SCHEME, bearer_token, webhook_target
from app.directory import webhooks as lucca_webhooks
from app.directory.webhooks import EVENT_EXAMPLE, LuccaEventIn
from app.errors import answers
from app.json_body import check_json, openapi_body, read_json, received_body
from app.models.base import utcnow
from app.queue import enqueue_lucca_events, enqueue_run
from app.schemas.cards_events import CHAPTER_EXAMPLE, QUIZ_EXAMPLE, CardsEventIn, EventAccepted
from app.schemas.run import WebhookAccepted
from app.schemas.softgarden import HIRE_EXAMPLE, SoftgardenHire
from app.services import cards_stats, softgarden

router = APIRouter(prefix="/integrations/webhooks", tags=["webhooks"])


@router.post(
    "/softgarden/candidate-hired",
    status_code=202,
    response_model=WebhookAccepted,
    responses={
        200: {"model": WebhookAccepted, "description": "A duplicate: the first run's id."},
        **answers(401, 403, 408, 413, 415, 422, described={403: "The Softgarden connector is disabled."}),
    },
    openapi_extra={
        **openapi_body(SoftgardenHire, {"hired": HIRE_EXAMPLE}),
        "security": [{WEBHOOK_SCHEME: []}],
    },
)
async def softgarden_candidate_hired(request: Request) -> JSONResponse:
    """A candidate moved to a status: a hire becomes a Lucca employee, any other status a skipped run.

    Keys are matched ignoring case; keys this service does not use are ignored.
    """
    # The busiest route, answered past FastAPI's request handling (app.direct_routes), so it does its own steps:
    # token, body (read and checked before a connection is taken, so a slow sender holds none), then the token's
    # connector, then one insert.
    services = request.app.state.services
    token = bearer_token(request)
    checked = check_json(SoftgardenHire, request, await received_body(request))
    async with request.app.state.driver_pool.acquire() as connection:
        target = await webhook_target(connection, "softgarden", token)
        receipt = await softgarden.receive_hire(connection, target, checked.value())
    # Stored and committed: only now may a worker see the run, and only now is the delivery answered.
    if receipt.queued:
        await enqueue_run(services.redis, receipt.run_id)
    body = WebhookAccepted(run_id=receipt.run_id, duplicate=receipt.duplicate).model_dump(mode="json")
    return JSONResponse(body, status_code=200 if receipt.duplicate else 202)


def event_answers(*more: int, described: dict[int, str]) -> dict[int | str, dict[str, Any]]:
    """The answers of a partner's event route besides its 202: a duplicate, the errors every one can give, `more`."""
    duplicate = {"model": EventAccepted, "description": "An event id seen before: nothing more was done."}
    return {200: duplicate, **answers(*sorted({401, 408, 413, 415, 422, *more}), described=described)}


# OpenAPI has no security scheme for a credential in the path: the parameter says it.
CardsToken = Annotated[
    str,
    Path(
        description="The Cards connector's webhook token (its credential), returned by the connector's first PUT and "
        "by `rotate-token`; give Cards the URL that carries it. It is never written to a log line."
    ),
]


@router.post(
    "/cards/{webhook_token}",
    status_code=202,
    response_model=EventAccepted,
    responses=event_answers(403, described={401: "Unknown webhook token.", 403: "The Cards connector is disabled."}),
    openapi_extra=openapi_body(CardsEventIn, {"chapter": CHAPTER_EXAMPLE, "quiz": QUIZ_EXAMPLE}),
)
async def cards_learning_event(request: Request, webhook_token: CardsToken) -> JSONResponse:
    """A Cards learning event, stored once per id before it is answered; the nightly push turns the
    `chapter-complete` and `quiz-complete` events into training statistics on each employee's Lucca record.

    Every type is accepted; keys this service does not use are ignored.
    """
    # As the Softgarden route: the body is read and checked before a connection is taken, the token first.
    checked = check_json(CardsEventIn, request, await received_body(request))
    async with request.app.state.driver_pool.acquire() as connection:
        target = await webhook_target(connection, cards_stats.SOURCE, webhook_token)
        event = checked.value()
        duplicate = await cards_stats.receive_event(connection, target, event)
    body = EventAccepted(id=event.id, duplicate=duplicate).model_dump(mode="json")
    return JSONResponse(body, status_code=200 if duplicate else 202)


LuccaToken = Annotated[
    str,
    Path(
        description="The token in the URL this service registered with Lucca for the tenant (its credential). It "
        "is never written to a log line."
    ),
]
ECHO_PARAMETERS = [
    {
        "name": name,
        "in": "query",
        "required": False,
        "schema": {"type": "string", "maxLength": lucca_webhooks.MAX_ECHO_CHARS},
        "description": f"Lucca's activation challenge, answered as it came{' (older name)' if name != 'echo' else ''}.",
    }
    for name in ("echo", "challenge")
]


@router.get(
    "/lucca/{lucca_token}",
    responses={
        200: {
            "content": {"text/plain": {"schema": {"type": "string"}, "example": "4f1a9c"}},
            "description": "The challenge, as it came.",
        },
        **answers(401, 422, described={401: "Unknown webhook token."}),
    },
    openapi_extra={"parameters": ECHO_PARAMETERS},
)
async def lucca_echo(request: Request, lucca_token: LuccaToken) -> PlainTextResponse:
    """Lucca's activation of the endpoint: `?echo=<value>` (or `?challenge=`) is answered with the value (empty
    when neither is given)."""
    services = request.app.state.services
    async with request.app.state.driver_pool.acquire() as connection:
        await lucca_webhooks.webhook_target(connection, services.box, lucca_token)
    value = request.query_params.get("echo", request.query_params.get("challenge", ""))
    if len(value) > lucca_webhooks.MAX_ECHO_CHARS:
        name = "echo" if "echo" in request.query_params else "challenge"
        message = f"at most {lucca_webhooks.MAX_ECHO_CHARS} characters: Lucca's challenge is shorter"
        raise RequestValidationError([{"type": "value_error", "loc": ("query", name), "msg": message}])
    return PlainTextResponse(value, headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"})


@router.post(
    "/lucca/{lucca_token}",
    status_code=202,
    response_model=EventAccepted,
    responses=event_answers(
        described={401: "Unknown webhook token, or a missing or invalid Lucca-Signature or Lucca-Timestamp."}
    ),
    openapi_extra=openapi_body(LuccaEventIn, {"employee_updated": EVENT_EXAMPLE}),
)
async def lucca_event(request: Request, lucca_token: LuccaToken) -> JSONResponse:
    """A Lucca event (employee, employment, job position, department), accepted only when signed with the
    endpoint's secret (`Lucca-Signature`, `Lucca-Timestamp` within 5 minutes), stored once per id before it is
    answered; a job then reads what changed and puts it in the tenant's directory copy."""
    services = request.app.state.services
    received = await received_body(request)
    now = utcnow()
    async with request.app.state.driver_pool.acquire() as connection:
        target = await lucca_webhooks.webhook_target(connection, services.box, lucca_token)
        if received.problem is not None:
            raise received.problem
        lucca_webhooks.check_signed(target, request.headers, received.content, now)
        event = read_json(LuccaEventIn, request, received)
        event_id, duplicate = await lucca_webhooks.store_event(connection, target, event, received.content, now)
    # Stored (autocommit): only now may a worker see it, and only now is the delivery answered.
    if not duplicate:
        await enqueue_lucca_events(services.redis, target.tenant_id)
    body = EventAccepted(id=event_id, duplicate=duplicate).model_dump(mode="json")
    return JSONResponse(body, status_code=200 if duplicate else 202)
