"""Lucca's v5 resources drawn from the one state the legacy API serves too: a v3 user is a v5 employee, with one
employment (contract dates, legal entity) and one job position (title, department, manager, establishment)."""

from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

from app.sandbox.lucca_models import Department, User, lookup
from app.sandbox.lucca_state import LuccaAccount

# A user's employment and job position get ids of their own, so that a client mixing them up with the employee's
# id reads the wrong thing, as it would on Lucca.
EMPLOYMENT_ID_OFFSET = 1_000_000
JOB_POSITION_ID_OFFSET = 2_000_000
Status = Literal["active", "upcoming", "deactivated"]
STATUSES: tuple[Status, ...] = ("active", "upcoming", "deactivated")


def employee_status(user: User, today: str) -> Status:
    """Computed from the contract: ended before today → deactivated, starting after today → upcoming."""
    if user.has_left(today):
        return "deactivated"
    if user.has_not_started(today):
        return "upcoming"
    return "active"


def v5_time(lucca_time: str) -> str:
    """A legacy `modifiedAt` (UTC, no offset) as v5 writes times."""
    return f"{lucca_time}Z"


def day(value: str | None) -> str | None:
    """A legacy contract date (`YYYY-MM-DDT00:00:00`) as a v5 date."""
    return None if value is None else value[:10]


def department_parent(department: Department) -> int | None:
    """The parent's id, whether the seed gave an id or a `/1/2/` path."""
    parent = department.parent_id
    if isinstance(parent, str):
        parts = [part for part in parent.split("/") if part]
        return int(parts[-1]) if parts and parts[-1].isdigit() else None
    return parent


@dataclass(frozen=True)
class V5View:
    """Renders one account's people and departments as v5 resources, with URLs under `base` (`…/lucca-api`)."""

    account: LuccaAccount
    base: str
    today: str
    links: bool = False

    @classmethod
    def of(cls, account: LuccaAccount, links: bool = False) -> "V5View":
        """The view at the account's address, as of today."""
        return cls(account, f"{account.public_url}/lucca-api", date.today().isoformat(), links)

    def identity(self, kind: str, collection: str, item_id: int) -> dict[str, Any]:
        """A resource's `{id, type, url}`."""
        return {"id": str(item_id), "type": kind, "url": f"{self.base}/{collection}/{item_id}"}

    def ref(self, kind: str, collection: str, item_id: int | None) -> dict[str, Any] | None:
        """A reference `{id, type, url}`, or None."""
        return None if item_id is None else self.identity(kind, collection, item_id)

    def employee(self, user: User) -> dict[str, Any]:
        """The `employee` resource."""
        record: dict[str, Any] = {
            **self.identity("employee", "employees", user.id),
            "remoteId": None,
            "portrait": None,
            "givenName": user.first_name,
            "familyName": user.last_name,
            "employeeNumber": user.employee_number,
            "status": employee_status(user, self.today),
            "email": user.mail,
            "birthDay": None,
            "phoneNumber": None,
            "applicableEmployment": self.ref("employment", "employments", EMPLOYMENT_ID_OFFSET + user.id),
            "applicableJobPosition": self.ref("job-position", "job-positions", JOB_POSITION_ID_OFFSET + user.id),
            "createdAt": v5_time(user.modified_at),
            "lastUpdatedAt": v5_time(user.modified_at),
        }
        if self.links:
            record["links"] = {
                "employments": {"href": f"{self.base}/employments?employee.id={user.id}"},
                "jobPositions": {"href": f"{self.base}/job-positions?employment.employee.id={user.id}"},
                "personalRecord": {"href": f"{self.base}/employee-personal-records?employee.id={user.id}"},
                "portrait": None,
            }
        return record

    def employment(self, user: User) -> dict[str, Any]:
        """The user's one `employment`: contract dates and the legal entity of their establishment."""
        establishment = lookup(self.account.establishments, user.legal_entity_id)
        legal_unit_id = None if establishment is None else establishment.legal_unit_id
        start, end = day(user.dt_contract_start), day(user.dt_contract_end)
        return {
            **self.identity("employment", "employments", EMPLOYMENT_ID_OFFSET + user.id),
            "remoteId": None,
            "employee": self.ref("employee", "employees", user.id),
            "legalEntity": self.ref("legal-entity", "legal-entities", legal_unit_id),
            "status": employee_status(user, self.today),
            "start": None if start is None else {"date": start},
            "end": None if end is None else {"date": end},
            "document": None,
            "template": None,
            "createdAt": v5_time(user.modified_at),
            "lastUpdatedAt": v5_time(user.modified_at),
        }

    def job_position(self, user: User) -> dict[str, Any]:
        """The user's one `job-position`: title, department, manager, business establishment."""
        return {
            **self.identity("job-position", "job-positions", JOB_POSITION_ID_OFFSET + user.id),
            "remoteId": None,
            "employment": self.ref("employment", "employments", EMPLOYMENT_ID_OFFSET + user.id),
            "employee": self.ref("employee", "employees", user.id),
            "status": employee_status(user, self.today),
            "startsOn": day(user.dt_contract_start),
            "endsOn": day(user.dt_contract_end),
            "businessEstablishment": self.ref(
                "business-establishment", "business-establishments", user.legal_entity_id
            ),
            "jobTitle": user.job_title,
            "jobQualification": None,
            "manager": self.ref("employee", "employees", user.manager_id),
            "occupationCategory": None,
            "workingTimeArrangement": None,
            "department": self.ref("department", "departments", user.department_id),
            "document": None,
            "notes": None,
            "createdAt": v5_time(user.modified_at),
            "lastUpdatedAt": v5_time(user.modified_at),
        }

    def embedded(self, users: list[User]) -> dict[str, dict[str, Any]]:
        """The employments and job positions the users' `applicable…` references point at, keyed by id."""
        return {
            "employment": {str(EMPLOYMENT_ID_OFFSET + user.id): self.employment(user) for user in users},
            "job-position": {str(JOB_POSITION_ID_OFFSET + user.id): self.job_position(user) for user in users},
        }

    def department(self, department: Department) -> dict[str, Any]:
        """The `department` resource; archived when the v4 department is inactive."""
        record: dict[str, Any] = {
            **self.identity("department", "departments", department.id),
            "name": department.name,
            "description": None,
            "remoteId": department.code,
            "isArchived": not department.is_active,
            "parent": self.ref("department", "departments", department_parent(department)),
            "level": department.level,
            "manager": self.ref("employee", "employees", department.head_id),
            "sortOrder": 0,
        }
        if self.links:
            href = f"{self.base}/employees?applicableJobPosition.department.id={department.id}"
            record["links"] = {"activeEmployees": {"href": href}}
        return record
