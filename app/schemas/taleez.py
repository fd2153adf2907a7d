"""Taleez: the connector's settings and the import request."""

from datetime import date
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from app.schemas.common import EmailTemplate, Name, PositiveId, Text, strict_date

TALEEZ_API = "https://api.taleez.com/0"


class TaleezSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    api_base_url: Annotated[str, Field(min_length=1, max_length=500)] = TALEEZ_API
    api_secret: Annotated[str, Field(min_length=1, max_length=500)]
    default_establishment_id: PositiveId | None = None
    default_department_id: PositiveId | None = None
    default_role_principal_id: PositiveId | None = None
    professional_email_template: EmailTemplate | None = None


class TaleezCandidateIn(BaseModel):
    """A candidate as Taleez describes it (`GET /candidates/{id}`), sent inline by the caller."""

    id: PositiveId
    firstName: Name
    lastName: Name
    mail: Text | None = None
    phone: Text | None = None


class TaleezImport(BaseModel):
    """Either `candidate_id` (read from Taleez) or `candidate`, plus the recruiter's choices."""

    candidate_id: PositiveId | None = None
    candidate: TaleezCandidateIn | None = None
    establishment_id: PositiveId | None = None
    department_id: PositiveId | None = None
    role_principal_id: PositiveId | None = None
    manager_id: PositiveId | None = None
    start_date: date | None = None

    _dates_are_strict = field_validator("start_date", mode="before")(strict_date)

    @model_validator(mode="after")
    def _one_candidate(self) -> "TaleezImport":
        if (self.candidate_id is None) == (self.candidate is None):
            raise ValueError("give either candidate_id or candidate, not both and not neither")
        return self


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
