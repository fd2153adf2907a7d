"""Which Cards user each Lucca employee became, and which Cards group each department became, per Cards space.

A link holds only in the space it was made in: a connector pointed at another space starts with no links there.
"""

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, Timestamps, UUIDKey, utcnow


class CardsUserLink(UUIDKey, Timestamps, Base):
    __tablename__ = "cards_user_links"
    # One Cards user per Lucca employee, and one employee per Cards user.
    __table_args__ = (
        UniqueConstraint("tenant_id", "space_id", "lucca_user_id"),
        UniqueConstraint("tenant_id", "space_id", "cards_user_id"),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    space_id: Mapped[str] = mapped_column(String(200))
    lucca_user_id: Mapped[int]
    cards_user_id: Mapped[int] = mapped_column(BigInteger)
    # The run whose create made this Cards user (None: found by e-mail): an attempt of that run that finds the
    # link counts the person as created, not linked.
    created_by_run: Mapped[uuid.UUID | None]


class CardsGroupLink(UUIDKey, Timestamps, Base):
    __tablename__ = "cards_group_links"
    # Two departments of the same name share a group: the group id is not unique.
    __table_args__ = (UniqueConstraint("tenant_id", "space_id", "department_id"),)

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    space_id: Mapped[str] = mapped_column(String(200))
    department_id: Mapped[int]
    cards_group_id: Mapped[int] = mapped_column(BigInteger)


class CardsUserCreate(Base):
    """A Cards user this service asked Cards to create, kept until its link is written: a create whose answer was
    lost is found by the e-mail it sent, even once the employee's e-mail has changed in Lucca."""

    __tablename__ = "cards_user_creates"

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    space_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    lucca_user_id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(500))
    sent_at: Mapped[datetime] = mapped_column(default=utcnow)


class CardsFollowState(Base):
    """What `auto_sync` follows, per tenant: the copy's `change_seq` its last pass took in, for which space and
    settings (another space or other settings start over, bringing the space in line once), and when it last looked
    for contracts that ended since (a date passing changes no row)."""

    __tablename__ = "cards_follow_states"

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    space_id: Mapped[str] = mapped_column(String(200))
    settings_key: Mapped[str] = mapped_column(String(64))
    seen_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    leavers_checked_at: Mapped[datetime] = mapped_column(default=utcnow)


class CardsFollowedPerson(Base):
    """What `auto_sync` last made of an employee in a space: the names, e-mail, department and status Cards was
    brought in line with (a change that alters none of them costs no Cards call), or why they could not be."""

    __tablename__ = "cards_followed_people"
    __table_args__ = (Index("ix_cards_followed_people_email_key", "tenant_id", "space_id", "email_key"),)

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    space_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    lucca_user_id: Mapped[int] = mapped_column(primary_key=True)
    view: Mapped[dict[str, Any]] = mapped_column(JSONB)
    # The e-mail ignoring case: a change of someone else's e-mail can end or start a duplicate.
    email_key: Mapped[str | None] = mapped_column(String(500))
