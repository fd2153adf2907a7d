"""Links between Lucca users and partner records, so a later run recognises whom it already handled."""

import uuid

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert

from app.db import Sessionmaker
from app.models import Link
from app.models.base import utcnow


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
