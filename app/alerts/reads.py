"""The tenant's problems with their alerts, as the API lists them."""

from collections import defaultdict

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.alerts.problems import console_url
from app.models import AlertChannel, AlertDelivery, AlertProblem, Tenant
from app.schemas.alert_problems import AlertRead, ProblemList, ProblemRead, ProblemRuns, ProblemStatus


async def list_problems(
    session: AsyncSession, tenant: Tenant, status: ProblemStatus | None, limit: int, public_base_url: str | None
) -> ProblemList:
    """The tenant's problems (of one status, if given), newest first, each with its alerts: two queries."""
    query = select(AlertProblem).where(AlertProblem.tenant_id == tenant.id)
    if status is not None:
        query = query.where(AlertProblem.status == status)
    found = list(await session.scalars(query.order_by(AlertProblem.opened_at.desc()).limit(limit)))
    alerts = await session.execute(
        select(AlertDelivery, AlertChannel.kind)
        .join(AlertChannel, AlertChannel.id == AlertDelivery.channel_id)
        .where(AlertDelivery.problem_id.in_([problem.id for problem in found]))
        .order_by(AlertDelivery.created_at, AlertChannel.position)
    )
    by_problem: dict[object, list[AlertRead]] = defaultdict(list)
    for delivery, kind in alerts:
        by_problem[delivery.problem_id].append(
            AlertRead(
                channel_id=delivery.channel_id,
                channel_kind=kind,
                event=delivery.event,
                status=delivery.status,
                attempts=delivery.attempts,
                error=delivery.error,
                created_at=delivery.created_at,
                sent_at=delivery.sent_at,
                next_attempt_at=delivery.next_attempt_at if delivery.status == "pending" else None,
            )
        )
    return ProblemList(
        items=[problem_read(problem, tenant, by_problem[problem.id], public_base_url) for problem in found]
    )


def problem_read(
    problem: AlertProblem, tenant: Tenant, alerts: list[AlertRead], public_base_url: str | None
) -> ProblemRead:
    run_id = problem.resolved_by_run_id or problem.last_run_id
    return ProblemRead(
        id=problem.id,
        kind=problem.kind,
        key=problem.key,
        source=problem.source,
        operation=problem.operation,
        status=problem.status,
        title=problem.title,
        message=problem.message,
        count=problem.count,
        opened_at=problem.opened_at,
        last_seen_at=problem.last_seen_at,
        resolved_at=problem.resolved_at,
        run_ids=ProblemRuns(
            first=problem.first_run_id, last=problem.last_run_id, resolved_by=problem.resolved_by_run_id
        ),
        console_url=console_url(public_base_url, tenant.slug, run_id),
        alerts=alerts,
    )
