"""Cards → Lucca: learning events in, training statistics pushed to each employee's record (contract section 9).

Statistics are worked out from the stored events, per employee (by `mail`, ignoring case) and training. The push
finds the learners in the directory's copy (current employees whose e-mail has learning events, a page at a time by
Lucca id, so its memory does not grow with the directory), then reads what Lucca holds of each page's compound field
in one call: occurrences are updated in place by the value-row ids Lucca gave them, which only Lucca's own answer
has current. An employee is written only when Lucca does not already hold their statistics. A fingerprint per
employee, marked with the run before its PUT, tells an attempt that resumes which writes were its own, so each is
counted once.
"""

import hashlib
import json
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import asyncpg
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import WebhookTarget
from app.clients.cards import CardsAuthFailed, CardsRejected, CardsTraining
from app.clients.lucca import LuccaAuthFailed, LuccaRejected, LuccaUser
from app.directory import reads
from app.directory.readiness import wait_for_directory
from app.metrics import metrics
from app.models import CardsEvent, CardsStatsPushed, Connector, Run, Tenant
from app.models.base import utcnow
from app.schemas.cards import CardsSettings, StatsFieldCodes
from app.schemas.cards_events import LEARNING_TYPES, QUIZ_COMPLETE, CardsEventIn
from app.services.connectors import connector_settings, enabled_connector
from app.services.context import Services
from app.services.locks import account_lock
from app.services.lucca_key import require_key
from app.services.run_log import Outcome, RunLog
from app.services.runs import new_run

SOURCE = "cards"
STATS_SYNC = "stats_sync"
# One push at a time per Lucca account: two would both add an occurrence that neither has seen yet.
LOCK_SCOPE = "cards-stats"
USER_FIELDS = ("id", "mail", "extendedData")
# Learners per page: their ids go in one Lucca call's query string, which Lucca caps at 8 KB with the headers.
LEARNERS_PER_PAGE = 500
PROGRESS = "stats_push"
# A LearningEvent's fields, in order, as stored (set on every chapter and quiz event).
LEARNING_COLUMNS = (
    CardsEvent.training_id, CardsEvent.type, CardsEvent.chapter_id, CardsEvent.occurred_at, CardsEvent.sent_at,
    CardsEvent.id, CardsEvent.progress, CardsEvent.points, CardsEvent.max_points,
)  # fmt: skip

# ----------------------------------------------------------------------------------------------------
# Receiving: the webhook's hot path speaks SQL to the driver, one statement that is atomic on its own.

STORE_EVENT = """
    INSERT INTO cards_events (tenant_id, event_id, type, email, training_id, chapter_id, occurred_at, sent_at,
                              progress, points, max_points, payload, received_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
    ON CONFLICT (tenant_id, event_id) DO NOTHING
    RETURNING id
"""


async def receive_event(connection: asyncpg.Connection, target: WebhookTarget, event: CardsEventIn) -> bool:
    """Store a learning event durably, once per id; True when its id was seen before (nothing more is done)."""
    data = event.data
    values = (
        target.tenant_id,
        event.id,
        event.type,
        data and data.user.email.strip().casefold(),
        data and data.training.id,
        data and data.training.chapter and data.training.chapter.id,
        data and data.created_at,
        event.created_at,
        data and data.score.progress,
        data and data.quiz_points(),
        data and data.score.max_points,
        json.dumps(event.payload()),
        utcnow(),
    )
    duplicate = await connection.fetchval(STORE_EVENT, *values) is None
    outcome = "duplicate" if duplicate else ("learning_event" if data else "other_event")
    metrics.inc("webhook_deliveries_total", source=SOURCE, outcome=outcome)
    return duplicate


# ----------------------------------------------------------------------------------------------------
# Statistics: a pure function of the events.


@dataclass(frozen=True)
class LearningEvent:
    """What the statistics read of one stored chapter or quiz event."""

    training_id: int
    type: str
    chapter_id: str | None
    occurred_at: datetime
    sent_at: datetime | None
    arrival: int
    progress: Decimal
    points: Decimal | None = None
    max_points: Decimal | None = None

    def order(self) -> tuple[datetime, datetime, int]:
        """Latest by when the learner did it, then by when Cards sent it, then by arrival."""
        return (self.occurred_at, self.sent_at or datetime.min, self.arrival)


@dataclass(frozen=True)
class TrainingStats:
    """One employee's statistics in one training, in the contract's formats."""

    training_id: int
    progress: str  # "NN%"
    score: str | None  # "NN%"; None before any quiz
    last_completion_date: str | None  # "YYYY-MM-DD"; None before the training is complete


def training_statistics(events: Iterable[LearningEvent]) -> list[TrainingStats]:
    """Per training, by id: progress, score and last completion date (contract section 9)."""
    by_training: dict[int, list[LearningEvent]] = defaultdict(list)
    for event in events:
        by_training[event.training_id].append(event)
    return [
        statistics_of(training_id, sorted(trained, key=LearningEvent.order))
        for training_id, trained in sorted(by_training.items())
    ]


def statistics_of(training_id: int, events: Sequence[LearningEvent]) -> TrainingStats:
    """`events` of one training, oldest first: progress of the latest, score of each quiz chapter's latest attempt,
    and the day of the latest event that brought progress to 100 % (after a re-completion, the later one)."""
    latest_attempts: dict[str | None, LearningEvent] = {}
    completed: datetime | None = None
    previous: Decimal | None = None
    for event in events:
        if event.type == QUIZ_COMPLETE:
            latest_attempts[event.chapter_id] = event
        if event.progress >= 1 and (previous is None or previous < 1):
            completed = event.occurred_at
        previous = event.progress
    return TrainingStats(
        training_id=training_id,
        progress=percent(events[-1].progress),
        score=quiz_score(latest_attempts.values()),
        last_completion_date=completed.date().isoformat() if completed else None,
    )


def quiz_score(attempts: Iterable[LearningEvent]) -> str | None:
    """Sum of points over sum of maximum points; None when no quiz counts."""
    counted = [(a.points, a.max_points) for a in attempts if a.points is not None and a.max_points is not None]
    most = sum((max_points for _, max_points in counted), Decimal(0))
    return percent(sum((points for points, _ in counted), Decimal(0)) / most) if most else None


def percent(share: Decimal) -> str:
    """0.285 → "29%": a share as a whole percentage, halves rounded up."""
    return f"{(share * 100).quantize(Decimal(1), ROUND_HALF_UP):f}%"


# ----------------------------------------------------------------------------------------------------
# Lucca's compound multi-occurrence field: one occurrence per training, updated in place by its value-row id.


@dataclass(frozen=True)
class Occurrence:
    """One training's statistics as an occurrence of the compound field holds them."""

    title: str
    link: str | None
    progress: str
    score: str | None
    last_completion_date: str | None

    def values(self, codes: StatsFieldCodes) -> dict[str, str | None]:
        return {
            codes.title: self.title,
            codes.link: self.link,
            codes.progress: self.progress,
            codes.score: self.score,
            codes.last_completion_date: self.last_completion_date,
        }


def occurrence_rows(extended_data: dict[str, Any] | None, compound: str) -> list[dict[str, Any]]:
    """The occurrences Lucca holds (`{"id": <value-row id>, "value": {<code>: {"value": …}}}`), as read."""
    rows = (extended_data or {}).get(compound) or []
    rows = [rows] if isinstance(rows, dict) else rows
    return [row for row in rows if isinstance(row, dict) and isinstance(row.get("id"), int)]


def held_value(row: dict[str, Any], code: str) -> str | None:
    """A sub-field's value as read (`{"value": x}` or a bare x), the way this service writes it."""
    value = row.get("value")
    sub = value.get(code) if isinstance(value, dict) else None
    held = sub.get("value") if isinstance(sub, dict) else sub
    if held is None or held == "":
        return None
    # Lucca reads dates back as midnight datetimes.
    text = str(held)
    return text[:10] if len(text) == 19 and text.endswith("T00:00:00") else text


def matching_row(
    rows: Sequence[dict[str, Any]], free: list[int], wanted: Occurrence, codes: StatsFieldCodes
) -> int | None:
    """The index of the occurrence that is this training's: same link, else same title."""
    for code, value in ((codes.link, wanted.link), (codes.title, wanted.title)):
        if value is not None:
            found = next((index for index in free if held_value(rows[index], code) == value), None)
            if found is not None:
                return found
    return None


def compound_update(
    extended_data: dict[str, Any] | None, codes: StatsFieldCodes, wanted: Sequence[Occurrence]
) -> list[dict[str, Any]] | None:
    """Every occurrence the compound field must hold for Lucca to hold `wanted`, or None when it already does.

    A training's occurrence is updated in place (its id kept, its other sub-fields too); a missing one is added
    with id 0; every other occurrence is sent back as it is, so none is ever dropped or duplicated.
    """
    rows = occurrence_rows(extended_data, codes.compound)
    written = [{"id": row["id"], "value": row.get("value")} for row in rows]
    free = list(range(len(rows)))
    changed = False
    for occurrence in wanted:
        values = occurrence.values(codes)
        fields = {code: {"value": value} for code, value in values.items()}
        index = matching_row(rows, free, occurrence, codes)
        if index is None:
            written.append({"id": 0, "value": fields})
            changed = True
            continue
        free.remove(index)
        if any(held_value(rows[index], code) != value for code, value in values.items()):
            current = rows[index].get("value")
            written[index]["value"] = {**(current if isinstance(current, dict) else {}), **fields}
            changed = True
    return written if changed else None


def stats_fingerprint(codes: StatsFieldCodes, wanted: Sequence[Occurrence]) -> str:
    """What was written, in 64 characters: the same statistics in the same fields give the same fingerprint."""
    content = {"codes": codes.model_dump(), "occurrences": [asdict(occurrence) for occurrence in wanted]}
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


# ----------------------------------------------------------------------------------------------------
# The push.


async def queue_stats_sync(session: AsyncSession, tenant: Tenant) -> Run:
    """Store a push run asked for now (the caller commits, then queues it); the connector must be enabled."""
    require_key(tenant, "the statistics push writes employees' records in Lucca")
    await enabled_connector(session, tenant, SOURCE)
    run = new_run(tenant, SOURCE, STATS_SYNC, "api", {})
    session.add(run)
    await session.flush()
    return run


async def process_stats_sync(services: Services, run: Run, tenant: Tenant, connector: Connector, log: RunLog) -> None:
    """The queued push: every current employee whose statistics changed since the last push is written."""
    settings: CardsSettings = connector_settings(services.box, connector)
    push = StatsPush(services, run, tenant, settings, log)
    async with account_lock(services.engine, services.redis, LOCK_SCOPE, await push.lucca.proven_account()):
        await push.push()


@dataclass(frozen=True)
class Progress:
    """The push's checkpoint in its run's state: the directory is read in id order, so it resumes after `after_id`."""

    after_id: int = 0
    matched: int = 0  # e-mails with events that belong to a current employee
    finished: bool = False


@dataclass(frozen=True)
class Pushed:
    fingerprint: str
    run_id: uuid.UUID | None


class StatsPush:
    def __init__(self, services: Services, run: Run, tenant: Tenant, settings: CardsSettings, log: RunLog) -> None:
        self.services = services
        self.run = run
        self.tenant = tenant
        self.codes = settings.stats_sync.field_codes
        self.log = log
        self.lucca = services.lucca(tenant)
        self.cards = services.cards(settings)
        # Trainings of this attempt: None for one Cards no longer has.
        self.trainings: dict[int, CardsTraining | None] = {}

    async def push(self) -> None:
        progress = Progress(**self.log.state.get(PROGRESS, {}))
        if progress.finished:
            return
        await wait_for_directory(self.services, self.tenant)
        while learners := await self.learners(progress.after_id):
            last_id, page = learners
            skipped, matched = await self.push_page(page)
            progress = replace(progress, after_id=last_id, matched=progress.matched + matched)
            await self.checkpoint(progress, skipped)
        await self.note_strangers(progress.matched)
        await self.checkpoint(replace(progress, finished=True), 0)

    async def learners(self, after_id: int) -> tuple[int, list[LuccaUser]] | None:
        """The next page of learners after Lucca id `after_id` (the copy's last id on it, and each as Lucca holds
        them now: one call), or None when there are no more."""
        emails = select(CardsEvent.email).where(
            CardsEvent.tenant_id == self.tenant.id, CardsEvent.type.in_(LEARNING_TYPES)
        )
        today = reads.today_of(self.tenant)
        async with self.services.sessionmaker() as session:
            found = await reads.current_matching(
                session, self.tenant.id, emails.distinct(), today, after_id, LEARNERS_PER_PAGE
            )
        if not found:
            return None
        held = await self.lucca.users_by_id([person.id for person in found], fields=USER_FIELDS)
        # Someone Lucca deleted since the copy last heard of it is not written.
        return found[-1].id, [held[person.id] for person in found if person.id in held]

    async def push_page(self, page: Sequence[LuccaUser]) -> tuple[int, int]:
        """Push one page of employees; returns how many were skipped and how many e-mails had events."""
        employees: dict[str, list[LuccaUser]] = defaultdict(list)
        for user in page:
            if user.mail and user.mail.strip():
                employees[user.mail.strip().casefold()].append(user)
        events = await self.learning_events(list(employees))
        pushed = await self.pushed([user.id for mail in events for user in employees[mail]])
        skipped = 0
        for mail, learned in events.items():
            statistics = training_statistics(learned)
            for user in employees[mail]:
                outcome = await self.push_employee(user, statistics, pushed.get(user.id))
                skipped += outcome == "skipped"
        return skipped, len(events)

    async def push_employee(
        self, user: LuccaUser, statistics: Sequence[TrainingStats], pushed: Pushed | None
    ) -> Outcome:
        wanted = [occurrence for stats in statistics if (occurrence := await self.occurrence(stats))]
        fingerprint = stats_fingerprint(self.codes, wanted)
        item, subject = f"lucca:{user.id}", user.mail or str(user.id)
        rows = compound_update(user.extended_data, self.codes, wanted) if wanted else None
        if rows is None:
            # Lucca holds these values already: written by an earlier attempt of this run (which stopped before
            # counting it: count it now, once), or unchanged since a push before.
            if pushed is not None and pushed.fingerprint == fingerprint and pushed.run_id == self.run.id:
                await self.log.item(item, "updated", "update", subject, self.written(wanted))
                return "updated"
            if pushed is None or pushed.fingerprint != fingerprint:
                await self.remember(user.id, fingerprint, None)
            return "skipped"
        # Marked before the PUT, so an attempt cut between the PUT and its count knows the write was its own; a PUT
        # that never landed leaves Lucca different, so a later attempt or push writes it again.
        await self.remember(user.id, fingerprint, self.run.id)
        try:
            await self.lucca.update_user(user.id, {self.codes.compound: rows})
        except LuccaAuthFailed:
            raise
        except LuccaRejected as refusal:
            await self.log.item(item, "failed", "fail", subject, f"Lucca refused the statistics: {refusal.message}")
            return "failed"
        await self.log.item(item, "updated", "update", subject, self.written(wanted))
        return "updated"

    def written(self, wanted: Sequence[Occurrence]) -> str:
        titles = ", ".join(f'"{occurrence.title}"' for occurrence in wanted[:3])
        more = f" and {len(wanted) - 3} more" if len(wanted) > 3 else ""
        return f"Training statistics written to {self.codes.compound}: {titles}{more}."

    async def occurrence(self, stats: TrainingStats) -> Occurrence | None:
        training = await self.training(stats.training_id)
        if training is None:
            return None
        return Occurrence(
            title=training.title,
            link=training.public_url or None,
            progress=stats.progress,
            score=stats.score,
            last_completion_date=stats.last_completion_date,
        )

    async def training(self, training_id: int) -> CardsTraining | None:
        """The training's title and link (cached by the client); None, said once, for one Cards no longer has."""
        if training_id not in self.trainings:
            try:
                self.trainings[training_id] = await self.cards.training(training_id)
            except CardsAuthFailed:
                raise
            except CardsRejected as refusal:
                if refusal.status != 404:
                    raise
                self.trainings[training_id] = None
                message = f"{refusal.message} Its statistics are not written; the occurrences Lucca holds stay."
                await self.log.event("note", f"training {training_id}", message, level="warning")
        return self.trainings[training_id]

    async def learning_events(self, emails: Sequence[str]) -> dict[str, list[LearningEvent]]:
        """The chapter and quiz events of these e-mails (case-folded), by e-mail: only the columns read."""
        query = select(CardsEvent.email, *LEARNING_COLUMNS).where(
            CardsEvent.tenant_id == self.tenant.id, CardsEvent.email.in_(emails), CardsEvent.type.in_(LEARNING_TYPES)
        )
        found: dict[str, list[LearningEvent]] = defaultdict(list)
        async with self.services.sessionmaker() as session:
            for email, *columns in await session.execute(query):
                found[str(email)].append(LearningEvent(*columns))
        return found

    async def pushed(self, user_ids: Sequence[int]) -> dict[int, Pushed]:
        query = select(CardsStatsPushed).where(
            CardsStatsPushed.tenant_id == self.tenant.id, CardsStatsPushed.lucca_user_id.in_(user_ids)
        )
        async with self.services.sessionmaker() as session:
            return {row.lucca_user_id: Pushed(row.fingerprint, row.run_id) for row in await session.scalars(query)}

    async def remember(self, user_id: int, fingerprint: str, run_id: uuid.UUID | None) -> None:
        """What Lucca now holds for this employee (`run_id`: the run that wrote it, None when nothing was written)."""
        values = {"fingerprint": fingerprint, "run_id": run_id, "pushed_at": utcnow()}
        statement = insert(CardsStatsPushed).values(tenant_id=self.tenant.id, lucca_user_id=user_id, **values)
        async with self.services.sessionmaker.begin() as session:
            await session.execute(
                statement.on_conflict_do_update(index_elements=["tenant_id", "lucca_user_id"], set_=values)
            )

    async def note_strangers(self, matched: int) -> None:
        """Events of people who are not current employees are kept and written nowhere: say how many, once."""
        query = select(func.count(func.distinct(CardsEvent.email))).where(
            CardsEvent.tenant_id == self.tenant.id, CardsEvent.type.in_(LEARNING_TYPES)
        )
        async with self.services.sessionmaker() as session:
            strangers = (await session.scalar(query) or 0) - matched
        if strangers > 0:
            people = "person has" if strangers == 1 else "people have"
            message = (
                f"{strangers} {people} learning events but no current Lucca employee with that e-mail: "
                "their events are kept and written nowhere."
            )
            await self.log.event("note", "learning events", message)

    async def checkpoint(self, progress: Progress, skipped: int) -> None:
        """Count a page's skips with its checkpoint, in one transaction; the last one sets the total."""
        async with self.services.sessionmaker.begin() as session:
            run = await session.scalar(select(Run).where(Run.id == self.run.id).with_for_update())
            assert run is not None
            counts = {**run.counts, "skipped": run.counts.get("skipped", 0) + skipped}
            if progress.finished:
                # Only now: a total reached early would let the run be closed as done before its last pages.
                counts["total"] = sum(counts.get(key, 0) for key in ("updated", "skipped", "failed"))
            run.counts = counts
            run.state = {**run.state, PROGRESS: asdict(progress)}
            self.log.state = run.state
