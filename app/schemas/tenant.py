"""Tenants: one Lucca account each."""

from datetime import datetime
from typing import Annotated
from zoneinfo import available_timezones

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    StrictStr,
    model_validator,
)
from pydantic.config import JsonDict

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
PollSeconds = Annotated[
    int,
    Field(ge=30, le=3600, description="How often the directory is polled without Lucca's webhooks (seconds)."),
    BeforeValidator(json_integer),
]
TokenUrl = Annotated[
    PartnerUrl,
    Field(description="Where client-credentials tokens come from; Lucca's own token URL when omitted."),
]


class RateLimitIn(RequestBody):
    requests: Requests = 50
    per_seconds: PerSeconds = 60


class RateLimitPatch(RequestBody):
    requests: Requests | None = None
    per_seconds: PerSeconds | None = None


class OAuthIn(RequestBody):
    """A client of Lucca's OAuth API (v5), declared in Lucca's integration keys with the scopes the README lists."""

    client_id: ClientId
    client_secret: Secret
    token_url: TokenUrl | None = None


class OAuthPatch(RequestBody):
    # The secret is sent to the token URL: a new one needs the secret again (as base_url needs the key).
    model_config = ConfigDict(json_schema_extra={"dependentRequired": {"token_url": ["client_secret"]}})

    client_id: ClientId | None = None
    client_secret: Secret | None = None
    token_url: TokenUrl | None = Field(
        default=None, description="A new token URL needs client_secret again: 422 otherwise; null: Lucca's own."
    )


# "api_key, oauth or both": at least one of them given and not null.
ONE_CREDENTIAL: JsonDict = {
    "anyOf": [
        {"required": ["api_key"], "properties": {"api_key": {"type": "string"}}},
        {"required": ["oauth"], "properties": {"oauth": {"type": "object"}}},
    ]
}


class LuccaCreate(RequestBody):
    model_config = ConfigDict(json_schema_extra=ONE_CREDENTIAL)

    base_url: PartnerUrl
    api_key: Secret | None = Field(default=None, description="Opens the legacy API; api_key, oauth or both.")
    oauth: OAuthIn | None = Field(default=None, description="Opens the OAuth API (v5); api_key, oauth or both.")
    rate_limit: RateLimitIn = RateLimitIn()
    poll_seconds: PollSeconds = 60

    @model_validator(mode="after")
    def _one_credential(self) -> "LuccaCreate":
        if self.api_key is None and self.oauth is None:
            raise ValueError("give api_key, oauth or both: Lucca cannot be reached without one of them")
        return self


class LuccaPatch(RequestBody):
    # The key is sent to the URL: a new base_url needs the key again (and the OAuth client secret, when OAuth is
    # set). JSON Schema cannot compare with what is stored, so the document asks for the key with any base_url.
    model_config = ConfigDict(json_schema_extra={"dependentRequired": {"base_url": ["api_key"]}})

    base_url: PartnerUrl | None = Field(
        default=None,
        description="A new base URL needs api_key again when the tenant has a key, and oauth.client_secret when "
        "it has OAuth: 422 otherwise.",
    )
    api_key: Secret | None = Field(
        default=None, description="null removes the key, as long as oauth stays and no enabled connector needs it."
    )
    oauth: OAuthPatch | None = Field(default=None, description="null removes OAuth, as long as api_key stays.")
    rate_limit: RateLimitPatch | None = None
    poll_seconds: PollSeconds | None = None


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
    poll_seconds: int


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
        "oauth": {"client_id": "<OAuth client id>", "client_secret": "<OAuth client secret>"},
        "rate_limit": {"requests": 50, "per_seconds": 60},
        "poll_seconds": 60,
    },
}
