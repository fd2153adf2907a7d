"""Taleez: the connector's settings and the import request."""

from datetime import date
from typing import Annotated

from pydantic import BeforeValidator, ConfigDict, Field, ValidationInfo, field_validator
from pydantic.config import JsonDict

from app.schemas.common import (
    EmailTemplate,
    HeaderValue,
    Name,
    PartnerUrl,
    PositiveId,
    RequestBody,
    Text,
    strict_date,
)

TALEEZ_API = "https://api.taleez.com/0"


class TaleezSettings(RequestBody):
    # The secret is sent to the URL: a new URL needs the secret again. JSON Schema cannot compare with what is
    # stored, so the document asks for the secret with any api_base_url (the server lets an unchanged one pass).
    model_config = ConfigDict(json_schema_extra={"dependentRequired": {"api_base_url": ["api_secret"]}})

    api_base_url: PartnerUrl = TALEEZ_API
    api_secret: Annotated[HeaderValue, Field(min_length=1, max_length=500)] = Field(
        description="Required on the first PUT and whenever api_base_url changes (422 otherwise); comes back as "
        '"***"; omitted or "***" keeps the stored one while api_base_url stays the same.'
    )
    default_establishment_id: PositiveId | None = None
    default_department_id: PositiveId | None = None
    default_role_principal_id: PositiveId | None = None
    professional_email_template: EmailTemplate | None = None


class TaleezCandidateIn(RequestBody):
    """A candidate as Taleez describes it (`GET /candidates/{id}`), sent inline by the caller."""

    id: PositiveId
    firstName: Name
    lastName: Name
    mail: Text | None = None
    phone: Text | None = None


# "Either candidate_id or candidate": exactly one of them is given and not null.
ONE_CANDIDATE: JsonDict = {
    "oneOf": [
        {"required": ["candidate_id"], "properties": {"candidate_id": {"type": "integer"}}},
        {"required": ["candidate"], "properties": {"candidate": {"type": "object"}}},
    ]
}


class TaleezImport(RequestBody):
    """Either `candidate_id` (read from Taleez) or `candidate`, plus the recruiter's choices."""

    model_config = ConfigDict(json_schema_extra=ONE_CANDIDATE)

    candidate_id: PositiveId | None = None
    candidate: TaleezCandidateIn | None = Field(default=None, validate_default=True)
    establishment_id: PositiveId | None = None
    department_id: PositiveId | None = None
    role_principal_id: PositiveId | None = None
    manager_id: PositiveId | None = None
    start_date: Annotated[date | None, BeforeValidator(strict_date)] = None

    @field_validator("candidate")
    @classmethod
    def _one_candidate(cls, value: TaleezCandidateIn | None, info: ValidationInfo) -> TaleezCandidateIn | None:
        # An invalid candidate_id has its own error already.
        if "candidate_id" in info.data and (info.data["candidate_id"] is None) == (value is None):
            raise ValueError("give either candidate_id or candidate, not both and not neither")
        return value


IMPORT_EXAMPLES = {
    "by_id": {"candidate_id": 4411, "establishment_id": 1, "department_id": 10, "start_date": "2027-01-04"},
    "inline": {
        "candidate": {
            "id": 4411,
            "firstName": "Inès",
            "lastName": "Dupré",
            "mail": "ines@perso.fr",
            "phone": "0611223344",
        },
        "establishment_id": 1,
        "department_id": 12,
        "start_date": "2027-01-04",
        "role_principal_id": 55,
    },
}
