"""Cards: the connector's settings (contract section 5.3)."""

from typing import Annotated, Literal

from pydantic import BeforeValidator, ConfigDict, Field

from app.schemas.common import Flag, HeaderValue, PartnerUrl, RequestBody, json_integer
from app.schemas.tenant import PerSeconds, RateLimitIn, Requests

CARDS_API = "https://api.cards-microlearning.com/v1"
# Cards' `source` on a user: how the account signs in.
LoginMode = Literal["app", "sso", "GoogleOAuth", "MicrosoftOAuth", "AppleOAuth"]
# A Lucca extended-data field code, as Lucca spells them.
FieldCode = Annotated[str, Field(pattern=r"^e_[A-Za-z0-9_]{1,60}$", description="A Lucca extended-data code (e_...).")]
Hour = Annotated[int, Field(ge=0, le=23), BeforeValidator(json_integer)]


class CardsRateLimit(RateLimitIn):
    requests: Requests = 300
    per_seconds: PerSeconds = 60


class StatsFieldCodes(RequestBody):
    """Where each statistic goes: one occurrence of the compound field per training."""

    compound: FieldCode = "e_formation"
    title: FieldCode = "e_title"
    link: FieldCode = "e_link"
    progress: FieldCode = "e_progress"
    score: FieldCode = "e_score"
    last_completion_date: FieldCode = "e_last_completion_date"


class StatsSync(RequestBody):
    enabled: Flag = False
    hour: Hour = Field(default=2, description="Local hour (tenant timezone) after which the nightly push is due.")
    field_codes: StatsFieldCodes = Field(default_factory=StatsFieldCodes)


DepartmentsFollowed = Literal["none", "imported", "all"]
LeaversRule = Literal["keep", "remove_from_groups", "delete"]


class AutoSync(RequestBody):
    """What Cards follows of the directory's copy on its own (contract 5.3); all off by default."""

    users: Flag = Field(
        default=False, description="Every current employee with a unique work e-mail is a Cards user, kept up to date."
    )
    departments: DepartmentsFollowed = Field(
        default="none",
        description='"imported": groups already made from departments keep their members; "all": every active'
        " department is a group. Groups the service did not make from a department are never touched.",
    )
    leavers: LeaversRule = Field(
        default="keep", description="What happens to the Cards user of an employee whose contract ended or who left."
    )

    @property
    def active(self) -> bool:
        """Whether anything is followed at all."""
        return self.users or self.departments != "none" or self.leavers != "keep"


class CardsSettings(RequestBody):
    # As for Taleez: the token goes to the URL, so a new URL needs the token again.
    model_config = ConfigDict(json_schema_extra={"dependentRequired": {"api_base_url": ["api_token"]}})

    api_base_url: PartnerUrl = CARDS_API
    api_token: Annotated[HeaderValue, Field(min_length=1, max_length=2000)] = Field(
        description='Required on the first PUT and whenever api_base_url changes; comes back as "***".'
    )
    space_id: Annotated[HeaderValue, Field(min_length=1, max_length=200)] = Field(
        description="The Cards space (sent as X-Tenant)."
    )
    rate_limit: CardsRateLimit = Field(default_factory=CardsRateLimit)
    notify_created_users: Flag = False
    login_mode: LoginMode = "app"
    stats_sync: StatsSync = Field(default_factory=StatsSync)
    auto_sync: AutoSync = Field(default_factory=AutoSync)
