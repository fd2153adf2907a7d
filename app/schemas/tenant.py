"""Tenants: one Lucca account each."""

from datetime import datetime
from typing import Annotated
from zoneinfo import available_timezones

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, SecretStr, StrictStr

from app.schemas.common import (
    HEADER_TEXT,
    HeaderValue,
    Name,
    PartnerUrl,
    RequestBody,
    Slug,
    header_text,
    json_integer,
)

# Sent in partners' HTTP headers: printable ASCII only (the pattern documents `header_text`).
Secret = Annotated[
    SecretStr,
    Field(min_length=1, max_length=2000),
    AfterValidator(header_text),
    Field(json_schema_extra={"pattern": HEADER_TEXT}),
]
ClientId = Annotated[HeaderValue, Field(min_length=1, max_length=500)]
TIMEZONES = sorted(available_timezones())
_KNOWN_TIMEZONES = frozenset(TIMEZONES)


def _known_timezone(value: str) -> str:
    if value not in _KNOWN_TIMEZONES:
        raise ValueError(f"unknown time zone {value!r}: use an IANA name such as Europe/Paris")
    return value


Timezone = Annotated[
    StrictStr, AfterValidator(_known_timezone), Field(json_schema_extra={"enum": TIMEZONES}, examples=["Europe/Paris"])
]
Requests = Annotated[int, Field(ge=1, le=100_000), BeforeValidator(json_integer)]
PerSeconds = Annotated[int, Field(ge=1, le=86_400), BeforeValidator(json_integer)]


class RateLimitIn(RequestBody):
    requests: Requests = 50
    per_seconds: PerSeconds = 60


class RateLimitPatch(RequestBody):
    requests: Requests | None = None
    per_seconds: PerSeconds | None = None


class OAuthIn(RequestBody):
    client_id: ClientId
    client_secret: Secret


class OAuthPatch(RequestBody):
    client_id: ClientId | None = None
    client_secret: Secret | None = None


class LuccaCreate(RequestBody):
    base_url: PartnerUrl
    api_key: Secret
    oauth: OAuthIn | None = None
    rate_limit: RateLimitIn = RateLimitIn()


class LuccaPatch(RequestBody):
    # The key is sent to the URL: a new base_url needs the key again (and the OAuth client secret, when OAuth is
    # set). JSON Schema cannot compare with what is stored, so the document asks for the key with any base_url.
    model_config = ConfigDict(json_schema_extra={"dependentRequired": {"base_url": ["api_key"]}})

    base_url: PartnerUrl | None = Field(
        default=None,
        description="A new base URL needs api_key again (and oauth.client_secret when OAuth is set): 422 otherwise.",
    )
    api_key: Secret | None = None
    oauth: OAuthPatch | None = None
    rate_limit: RateLimitPatch | None = None


class TenantCreate(RequestBody):
    slug: Slug
    name: Name
    timezone: Timezone = "Europe/Paris"
    lucca: LuccaCreate


class TenantUpdate(RequestBody):
    """Any subset of a tenant; the slug is fixed once created, so it is not one of them."""

    name: Name | None = None
    timezone: Timezone | None = None
    lucca: LuccaPatch | None = None


class RateLimitRead(BaseModel):
    requests: int
    per_seconds: int


class LuccaRead(BaseModel):
    base_url: str
    api_key_set: bool
    oauth_set: bool
    rate_limit: RateLimitRead


class TenantRead(BaseModel):
    slug: str
    name: str
    timezone: str
    lucca: LuccaRead
    created_at: datetime


class TenantCreated(TenantRead):
    api_key: str = Field(description="The tenant key, returned this once only.")


class TenantKey(BaseModel):
    api_key: str = Field(description="The new tenant key, returned this once only; the old one no longer works.")


TENANT_EXAMPLE = {
    "slug": "acme",
    "name": "Acme SAS",
    "timezone": "Europe/Paris",
    "lucca": {
        "base_url": "https://acme.ilucca.net",
        "api_key": "<Lucca API key>",
        "rate_limit": {"requests": 50, "per_seconds": 60},
    },
}
