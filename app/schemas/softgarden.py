"""Softgarden: the connector's settings and the candidate-hired webhook body."""

from datetime import date
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictStr, field_validator, model_validator

from app.schemas.common import EmailTemplate, Name, PositiveId, Text, strict_date


class SoftgardenSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    professional_email_template: EmailTemplate
    default_department_id: PositiveId
    default_role_principal_id: PositiveId
    hire_statuses: list[Annotated[str, Field(min_length=1)]] = Field(default=["hired"], min_length=1)
    establishment_ids: list[PositiveId] | None = None
    establishment_aliases: dict[str, PositiveId] = Field(default_factory=dict)
    default_establishment_id: PositiveId | None = None


class SoftgardenAddress(BaseModel):
    street: Text | None = None
    postalcode: Text | None = None
    city: Text | None = None
    countrycode: Text | None = None

    def one_line(self) -> str:
        """`street, postalCode city, countryCode`, empty parts left out."""
        town = " ".join(part for part in (self.postalcode, self.city) if part)
        return ", ".join(part for part in (self.street, town, self.countrycode) if part)


def _lower_keys(value: Any) -> Any:
    return {str(key).lower(): item for key, item in value.items()} if isinstance(value, dict) else value


class SoftgardenHire(BaseModel):
    """The candidate-hired body; keys are matched ignoring case (`firstname` = `firstName`)."""

    applicationid: Name
    candidateid: StrictStr | int | None = None
    status: Text | None = None
    firstname: Name
    lastname: Name
    email: Text | None = None
    phone: Text | None = None
    address: Text | SoftgardenAddress | None = None
    jobtitle: Text | None = None
    company: Text | None = None
    startdate: date | None = None

    _dates_are_strict = field_validator("startdate", mode="before")(strict_date)

    @model_validator(mode="before")
    @classmethod
    def _keys_ignoring_case(cls, value: Any) -> Any:
        value = _lower_keys(value)
        if isinstance(value, dict) and "address" in value:
            value["address"] = _lower_keys(value["address"])
        return value

    @field_validator("applicationid", "firstname", "lastname")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value.strip()

    def address_line(self) -> str | None:
        if isinstance(self.address, SoftgardenAddress):
            return self.address.one_line() or None
        return self.address or None


HIRE_EXAMPLE = {
    "applicationId": "7f0c2a51-hire-0001",
    "candidateId": "c-991",
    "status": "hired",
    "firstName": "Zoë",
    "lastName": "Müller",
    "email": "zoe.m@gmail.com",
    "phone": "+49 170 1234567",
    "address": {"street": "Hauptstr. 1", "postalCode": "10115", "city": "Berlin", "countryCode": "DE"},
    "jobTitle": "Backend Engineer",
    "company": "Acme Berlin",
    "startDate": "2026-12-01",
}
