"""Links between Lucca users and partner records, so a later run recognises whom it already handled.

Cards has its own: one Cards user per employee and one group per department, in each Cards space."""

import uuid

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import Sessionmaker
from app.models import Link
from app.models.base import utcnow
from app.models.cards import CardsGroupLink, CardsUserCreate, CardsUserLink


async def find_linked_user(
    sessionmaker: Sessionmaker, tenant_id: uuid.UUID, partner: str, external_id: str
) -> int | None:
    async with sessionmaker() as session:
        return await session.scalar(
            select(Link.lucca_user_id).where(
                Link.tenant_id == tenant_id, Link.partner == partner, Link.external_id == external_id
            )
        )


async def save_link(
    sessionmaker: Sessionmaker, tenant_id: uuid.UUID, partner: str, external_id: str, lucca_user_id: int
) -> None:
    statement = insert(Link).values(
        id=uuid.uuid4(),
        tenant_id=tenant_id,
        partner=partner,
        external_id=external_id,
        lucca_user_id=lucca_user_id,
    )
    statement = statement.on_conflict_do_update(
        index_elements=[Link.tenant_id, Link.partner, Link.external_id],
        set_={"lucca_user_id": lucca_user_id, "updated_at": utcnow()},
    )
    async with sessionmaker.begin() as session:
        await session.execute(statement)


async def user_links(session: AsyncSession, tenant_id: uuid.UUID, space_id: str) -> dict[int, int]:
    """Lucca user id → Cards user id."""
    rows = await session.execute(
        select(CardsUserLink.lucca_user_id, CardsUserLink.cards_user_id).where(
            CardsUserLink.tenant_id == tenant_id, CardsUserLink.space_id == space_id
        )
    )
    return {key: value for key, value in rows}


async def creates_sent(session: AsyncSession, tenant_id: uuid.UUID, space_id: str) -> dict[int, str]:
    """Lucca user id → the e-mail of a Cards create sent for them and not linked yet (its answer may have been lost)."""
    rows = await session.execute(
        select(CardsUserCreate.lucca_user_id, CardsUserCreate.email).where(
            CardsUserCreate.tenant_id == tenant_id, CardsUserCreate.space_id == space_id
        )
    )
    return {key: value for key, value in rows}


async def created_by(session: AsyncSession, tenant_id: uuid.UUID, space_id: str, run_id: uuid.UUID) -> set[int]:
    """The Lucca ids whose Cards user this run's create made (save_user_link's `created_by_run`)."""
    rows = await session.scalars(
        select(CardsUserLink.lucca_user_id).where(
            CardsUserLink.tenant_id == tenant_id,
            CardsUserLink.space_id == space_id,
            CardsUserLink.created_by_run == run_id,
        )
    )
    return set(rows)


async def note_create_sent(
    sessionmaker: Sessionmaker, tenant_id: uuid.UUID, space_id: str, lucca_user_id: int, email: str
) -> None:
    """Remember, before sending it, the create of this employee's Cards user (save_user_link forgets it)."""
    statement = insert(CardsUserCreate).values(
        tenant_id=tenant_id, space_id=space_id, lucca_user_id=lucca_user_id, email=email, sent_at=utcnow()
    )
    async with sessionmaker.begin() as session:
        await session.execute(
            statement.on_conflict_do_update(
                index_elements=[CardsUserCreate.tenant_id, CardsUserCreate.space_id, CardsUserCreate.lucca_user_id],
                set_={"email": email, "sent_at": utcnow()},
            )
        )


async def group_links(session: AsyncSession, tenant_id: uuid.UUID, space_id: str) -> dict[int, int]:
    """Lucca department id → Cards group id."""
    rows = await session.execute(
        select(CardsGroupLink.department_id, CardsGroupLink.cards_group_id).where(
            CardsGroupLink.tenant_id == tenant_id, CardsGroupLink.space_id == space_id
        )
    )
    return {key: value for key, value in rows}


async def save_user_link(
    sessionmaker: Sessionmaker,
    tenant_id: uuid.UUID,
    space_id: str,
    lucca_user_id: int,
    cards_user_id: int,
    created_by_run: uuid.UUID | None = None,
) -> None:
    """Link the employee to the Cards user; `created_by_run`: the run whose create made that user."""
    where = (CardsUserLink.tenant_id == tenant_id, CardsUserLink.space_id == space_id)
    statement = insert(CardsUserLink).values(
        id=uuid.uuid4(),
        tenant_id=tenant_id,
        space_id=space_id,
        lucca_user_id=lucca_user_id,
        cards_user_id=cards_user_id,
        created_by_run=created_by_run,
    )
    async with sessionmaker.begin() as session:
        # A Cards user is one employee: linked to someone else before (an e-mail that moved), that link goes.
        await session.execute(
            delete(CardsUserLink).where(
                *where, CardsUserLink.cards_user_id == cards_user_id, CardsUserLink.lucca_user_id != lucca_user_id
            )
        )
        await session.execute(
            statement.on_conflict_do_update(
                index_elements=[CardsUserLink.tenant_id, CardsUserLink.space_id, CardsUserLink.lucca_user_id],
                set_={"cards_user_id": cards_user_id, "created_by_run": created_by_run, "updated_at": utcnow()},
            )
        )
        # Linked: a create sent for them is settled.
        await session.execute(
            delete(CardsUserCreate).where(
                CardsUserCreate.tenant_id == tenant_id,
                CardsUserCreate.space_id == space_id,
                CardsUserCreate.lucca_user_id == lucca_user_id,
            )
        )


async def save_group_link(
    sessionmaker: Sessionmaker, tenant_id: uuid.UUID, space_id: str, department_id: int, cards_group_id: int
) -> None:
    statement = insert(CardsGroupLink).values(
        id=uuid.uuid4(),
        tenant_id=tenant_id,
        space_id=space_id,
        department_id=department_id,
        cards_group_id=cards_group_id,
    )
    async with sessionmaker.begin() as session:
        await session.execute(
            statement.on_conflict_do_update(
                index_elements=[CardsGroupLink.tenant_id, CardsGroupLink.space_id, CardsGroupLink.department_id],
                set_={"cards_group_id": cards_group_id, "updated_at": utcnow()},
            )
        )


async def forget_user_link(sessionmaker: Sessionmaker, tenant_id: uuid.UUID, space_id: str, lucca_user_id: int) -> None:
    """The employee's Cards user is gone (deleted): a later import or auto_sync creates one afresh."""
    async with sessionmaker.begin() as session:
        await session.execute(
            delete(CardsUserLink).where(
                CardsUserLink.tenant_id == tenant_id,
                CardsUserLink.space_id == space_id,
                CardsUserLink.lucca_user_id == lucca_user_id,
            )
        )
