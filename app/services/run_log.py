"""What a running job writes down as it goes: events, item outcomes, its own progress, and the end.

Each write is its own committed transaction, so progress shows while the run works and survives a crash.
Item outcomes are recorded once per item id in the run's ledger (run_items), so a job that runs twice never counts
an item twice; recording one costs the same whatever the run's size (a row, and the run's counts moved by one).
"""

import uuid
from typing import Any, Literal

from arq.connections import ArqRedis
from sqlalchemy import Integer, Text, cast, func, literal, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.alerts.sources import after_run
from app.db import Sessionmaker
from app.metrics import metrics
from app.models import FINISHED, Run, RunEvent, RunItem
from app.models.base import utcnow
from app.queue import enqueue_alerts

Level = Literal["info", "warning", "error"]
Action = Literal["create", "link", "update", "skip", "suspend", "fail", "note"]
Outcome = Literal["created", "linked", "updated", "skipped", "suspended", "failed"]
WENT_THROUGH = ("created", "linked", "updated", "skipped", "suspended")
ACTION_LEVEL: dict[Action, Level] = {"fail": "error"}


class RunLog:
    def __init__(self, sessionmaker: Sessionmaker, run_id: uuid.UUID, state: dict[str, Any]) -> None:
        self._sessionmaker = sessionmaker
        self.run_id = run_id
        self.state = dict(state)
        # The items counted, read from the ledger once per attempt (when first asked) and kept current.
        self._done: set[str] | None = None

    async def _locked_run(self, session: AsyncSession) -> Run:
        run = await session.scalar(select(Run).where(Run.id == self.run_id).with_for_update())
        assert run is not None
        return run

    async def event(self, action: Action, subject: str, message: str, level: Level | None = None) -> None:
        async with self._sessionmaker.begin() as session:
            # One writer at a time (as `item`), so a run's event ids grow in commit order: pages read by id.
            run = await self._locked_run(session)
            session.add(_event(run.id, run.tenant_id, action, subject, message, level))

    async def remember(self, key: str, value: Any) -> None:
        """Save a piece of progress (e.g. the login about to be created) before acting on it."""
        async with self._sessionmaker.begin() as session:
            run = await self._locked_run(session)
            run.state = {**run.state, key: value}
            self.state = run.state

    async def done_items(self) -> set[str]:
        """The ids of the items this run has counted (in any attempt)."""
        if self._done is None:
            async with self._sessionmaker() as session:
                self._done = set(await session.scalars(select(RunItem.item_id).where(RunItem.run_id == self.run_id)))
        return self._done

    async def is_done(self, item_id: str) -> bool:
        return item_id in await self.done_items()

    async def item(
        self,
        item_id: str,
        outcome: Outcome,
        action: Action,
        subject: str,
        message: str,
        level: Level | None = None,
    ) -> bool:
        """Count one item's outcome with the event that explains it, unless this item was already counted;
        True when it was counted now."""
        async with self._sessionmaker.begin() as session:
            # The ledger's key decides, whichever attempt or worker got there first (a second insert waits for
            # the first's transaction, then does nothing).
            inserted = await session.scalar(
                insert(RunItem)
                .values(run_id=self.run_id, item_id=item_id, outcome=outcome, at=utcnow())
                .on_conflict_do_nothing()
                .returning(RunItem.item_id)
            )
            if inserted is not None:
                tenant_id = await session.scalar(counted(self.run_id, outcome, message).returning(Run.tenant_id))
                assert tenant_id is not None
                session.add(_event(self.run_id, tenant_id, action, subject, message, level))
        if self._done is not None:
            self._done.add(item_id)
        return inserted is not None


def counted(run_id: uuid.UUID, outcome: Outcome, message: str) -> Any:
    """The run's count of `outcome` moved by one in place (its first failure says why the run failed)."""
    count = func.coalesce(cast(Run.counts[outcome].astext, Integer), 0) + 1
    values: dict[str, Any] = {
        "counts": Run.counts.op("||")(func.jsonb_build_object(cast(literal(outcome), Text), count))
    }
    if outcome == "failed":
        values["error"] = func.coalesce(Run.error, sentence(message))
    return update(Run).where(Run.id == run_id).values(values)


async def items_done(session: AsyncSession, run_id: uuid.UUID) -> int:
    """How many items the run has counted: its ledger's rows (one count per attempt, not per item)."""
    return await session.scalar(select(func.count()).select_from(RunItem).where(RunItem.run_id == run_id)) or 0


async def finish_run(
    sessionmaker: Sessionmaker,
    run_id: uuid.UUID,
    error: str | None = None,
    *,
    redis: ArqRedis | None = None,
    refused_by: str | None = None,
) -> Run:
    """Close a run; its status follows from its counts (skips are not failures). In the same transaction, its
    problem is reported or cleared (`refused_by`: the partner that refused the stored credentials); the alerts
    this makes are queued on `redis` once committed (else the alerts' tick takes them up)."""
    async with sessionmaker.begin() as session:
        run = await session.scalar(select(Run).where(Run.id == run_id).with_for_update())
        assert run is not None
        if run.status in FINISHED:
            return run  # closed by an earlier attempt: its problem was counted then
        counts = dict(run.counts)
        if error is not None:
            # Items not reached fail with the run.
            unfinished = counts.get("total", 0) - sum(counts.get(key, 0) for key in (*WENT_THROUGH, "failed"))
            counts["failed"] = counts.get("failed", 0) + max(unfinished, 0)
            run.error = run.error or sentence(error)
        went_through = sum(counts.get(key, 0) for key in WENT_THROUGH)
        failed = counts.get("failed", 0)
        run.counts = counts
        # A run that stopped on an error did not succeed, even before it counted any item.
        run.status = "succeeded" if not failed and error is None else ("partial" if went_through else "failed")
        run.finished_at = utcnow()
        metrics.inc("runs_finished_total", connector=run.connector, operation=run.operation, status=run.status)
        deliveries = await after_run(session, run, refused_by)
    await enqueue_alerts(redis, deliveries)
    return run


def sentence(message: str) -> str:
    """Events read as sentences: a partner's own words (a refusal's message) may lack the full stop."""
    message = message.strip()
    return message if not message or message.endswith((".", "!", "?")) else f"{message}."


def _event(
    run_id: uuid.UUID, tenant_id: uuid.UUID, action: Action, subject: str, message: str, level: Level | None
) -> RunEvent:
    return RunEvent(
        run_id=run_id,
        tenant_id=tenant_id,
        action=action,
        # The column holds 300 characters: a longer subject (a partner's long name or e-mail) is cut, visibly.
        subject=subject if len(subject) <= 300 else subject[:299] + "…",
        message=sentence(message),
        level=level or ACTION_LEVEL.get(action, "info"),
        at=utcnow(),
    )
