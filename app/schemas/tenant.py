"""Tenants: one Lucca account each."""

from datetime import datetime
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, Field, SecretStr

Slug = Annotated[str, Field(pattern=r"^[a-z0-9-]{2,40}$")]
Name = Annotated[str, Field(min_length=1, max_length=200)]
Secret = Annotated[SecretStr, Field(min_length=1, max_length=2000)]
Url = Annotated[str, Field(min_length=1, max_length=500)]


def _known_timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r}") from None
    return value


Timezone = Annotated[str, AfterValidator(_known_timezone)]


class RateLimitIn(BaseModel):
    requests: int = Field(default=50, ge=1, le=100_000)
    per_seconds: int = Field(default=60, ge=1, le=86_400)


class RateLimitPatch(BaseModel):
    requests: int | None = Field(default=None, ge=1, le=100_000)
    per_seconds: int | None = Field(default=None, ge=1, le=86_400)


class OAuthIn(BaseModel):
    client_id: str = Field(min_length=1, max_length=500)
    client_secret: Secret


class OAuthPatch(BaseModel):
    client_id: str | None = Field(default=None, min_length=1, max_length=500)
    client_secret: Secret | None = None


class LuccaCreate(BaseModel):
    base_url: Url
    api_key: Secret
    oauth: OAuthIn | None = None
    rate_limit: RateLimitIn = RateLimitIn()


class LuccaPatch(BaseModel):
    base_url: Url | None = None
    api_key: Secret | None = None
    oauth: OAuthPatch | None = None
    rate_limit: RateLimitPatch | None = None


class TenantCreate(BaseModel):
    slug: Slug
    name: Name
    timezone: Timezone = "Europe/Paris"
    lucca: LuccaCreate


class TenantUpdate(BaseModel):
    slug: Slug | None = None
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
