"""What the API adds for the console (contract section 12): the operator's tenant list, console links, who is
signed in, and connection checks."""

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, Field

from app.schemas.common import RequestBody, json_integer
from app.schemas.tenant import TenantRead
from app.services.console_links import DEFAULT_TTL_SECONDS, MAX_TTL_SECONDS, MintedBy


class TenantPage(BaseModel):
    items: list[TenantRead]
    next: str | None = Field(description="Pass it as `after` for the next page; null on the last one.")


TtlSeconds = Annotated[int, Field(ge=1, le=MAX_TTL_SECONDS), BeforeValidator(json_integer)]


class ConsoleLinkCreate(RequestBody):
    ttl_seconds: TtlSeconds = Field(default=DEFAULT_TTL_SECONDS, description="How long the link works, in seconds.")


class ConsoleLinkCreated(BaseModel):
    url: str = Field(description="`<base>/console#token=<token>`: the token is in the fragment, which no server sees.")
    expires_at: datetime
    id: uuid.UUID = Field(description="The link's id, to end it with `DELETE …/console-links/{link_id}`.")


class ConsoleLinkRead(BaseModel):
    """A live console link: never its token, nor anything made from it."""

    id: uuid.UUID
    created_at: datetime
    expires_at: datetime
    minted_by: MintedBy = Field(description="Who made it: the operator or the tenant key (console tokens make none).")


class ConsoleLinkList(BaseModel):
    items: list[ConsoleLinkRead] = Field(description="The tenant's live links, newest first.")


class SignedIn(BaseModel):
    """Who the credentials are, so the console knows what to show."""

    role: Literal["operator", "tenant"]
    tenant: TenantRead | None = Field(description="The tenant a key or console token acts for; null for the operator.")
    expires_at: datetime | None = Field(description="When a console token stops working; null for keys and tokens.")


class PartnerCheck(BaseModel):
    partner: str = Field(examples=["lucca"])
    ok: bool
    message: str = Field(description="Plain words for a tenant admin: what answered, or what to fix where.")


class ConnectorCheck(BaseModel):
    ok: bool = Field(description="True when every partner answered as it should.")
    checks: list[PartnerCheck]
