"""The people file for Elevo (contract 10), built while paging through the directory's copy without holding it.

The first pass reads the copy's people a page at a time (former employees too, to say who departed; not those gone
from Lucca) and writes each row to a draft file as it goes, with the manager's Lucca id where the manager's e-mail
will be: a manager may come on a later page. It keeps only each person's e-mail by id (for managers), the e-mails of
the rows (to find duplicates) and who is left out. The second pass copies the draft into the final CSV, each
manager's e-mail in place (empty for a manager Lucca no longer lists, as Lucca's own answer would leave it).

Extra columns read the copy: `e_` codes from its `extended` fields, user fields from its columns (`login`,
`personalEmail` and `rolePrincipalId`, which have none, from what the legacy API's reads keep in `extended`).

Files are written in worker threads: the event loop never waits on the disk.
"""

import asyncio
import csv
import re
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.clients.lucca import LuccaUser
from app.directory import reads
from app.schemas.elevo import COLUMNS, ElevoSettings

# Lucca's name of a user field → the Lucca client's attribute.
ATTRIBUTES = {info.alias or name: name for name, info in LuccaUser.model_fields.items()}
EMAIL, MANAGER_EMAIL = COLUMNS.index("email"), COLUMNS.index("manager_email")
FIRST_NAME, LAST_NAME = COLUMNS.index("first_name"), COLUMNS.index("last_name")
# People read from the copy per query: memory stays flat whatever the directory's size.
PAGE_ROWS = 1000
# A Lucca date or datetime value (`2016-09-01T00:00:00`): the file writes its day.
LUCCA_DATE = re.compile(r"\d{4}-\d{2}-\d{2}(?:T[0-9:.]+)?")
DRAFT = "draft.csv"
DEPARTED = "departed"


@dataclass(frozen=True, slots=True)
class LeftOut:
    """Someone Lucca lists who is not in the file, and why (`reason` starts with its kind: `departed: …`)."""

    lucca_id: int
    name: str
    email: str | None
    reason: str

    @property
    def kind(self) -> str:
        """What the reason starts with: `departed`, `skip flag`, `no email` or `duplicate email`."""
        return self.reason.partition(":")[0]


@dataclass(frozen=True, slots=True)
class Sent:
    """Someone in the file."""

    lucca_id: int
    email: str
    name: str


def cell(value: Any) -> str:
    """A Lucca value as the file writes it: text as is, numbers, dates as YYYY-MM-DD, a list entry by its name, a
    checkbox as true/false, several values joined by `; `, nothing as empty."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return value[:10] if LUCCA_DATE.fullmatch(value) else value
    if isinstance(value, list):
        return "; ".join(text for text in map(cell, value) if text)
    if isinstance(value, dict):
        # An extended-data value row is `{"id", "value"}`; a list entry is `{"id", "name"}`.
        for key in ("value", "name"):
            if key in value:
                return cell(value[key])
    return ""  # a composite value: not one cell


def is_checked(value: Any) -> bool:
    """A checkbox's extended data (`{"id", "value": true}`); missing or null means not checked."""
    value = value.get("value") if isinstance(value, dict) else value
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


def full_name(first: str | None, last: str | None, lucca_id: int) -> str:
    return " ".join(part for part in (first, last) if part) or f"Lucca user {lucca_id}"


class PeopleFile:
    """The file as it is built in `workdir`: `add_page` for each page, then `write_csv` or `rows`."""

    def __init__(self, settings: ElevoSettings, today: date, teams: dict[int, str], workdir: Path) -> None:
        self.header = [*COLUMNS, *settings.extra_columns]
        self.total = 0
        self.left_out: list[LeftOut] = []
        self.sent: list[Sent] = []
        self._settings = settings
        self._today = today
        self._teams = teams
        self._draft = workdir / DRAFT
        self._draft.touch()
        self._mails: dict[int, str] = {}
        self._emails: Counter[str] = Counter()

    def add_page(self, users: Iterable[LuccaUser]) -> None:
        with self._draft.open("a", encoding="utf-8", newline="") as draft:
            rows = csv.writer(draft)
            for user in users:
                self.total += 1
                if user.mail:
                    self._mails[user.id] = user.mail
                reason = self._reason_left_out(user)
                if reason is not None:
                    name = full_name(user.first_name, user.last_name, user.id)
                    self.left_out.append(LeftOut(user.id, name, user.mail or None, reason))
                    continue
                assert user.mail is not None
                self._emails[user.mail.casefold()] += 1
                rows.writerow([user.id, user.manager_id or "", *self._cells(user)])

    def write_csv(self, path: Path) -> None:
        """The final file: UTF-8 without a byte-order mark, a header row, CRLF line ends, quoted where needed."""
        with path.open("w", encoding="utf-8", newline="") as target:
            rows = csv.writer(target)
            rows.writerow(self.header)
            for row in self._final_rows():
                rows.writerow(row)

    def rows(self) -> list[dict[str, str]]:
        """The final rows keyed by column (the preview)."""
        return [dict(zip(self.header, row, strict=True)) for row in self._final_rows()]

    def _reason_left_out(self, user: LuccaUser) -> str | None:
        code = self._settings.skip_field_code
        if not user.is_employed_on(self._today):
            return f"{DEPARTED}: their contract ended on {user.dt_contract_end}"
        if is_checked((user.extended_data or {}).get(code)):
            return f"skip flag: {code} is checked in Lucca"
        if not (user.mail or "").strip():
            return "no email: Lucca has no professional e-mail (mail) for them"
        return None

    def _cells(self, user: LuccaUser) -> list[str]:
        team = self._teams.get(user.department_id, "") if user.department_id is not None else ""
        own = [user.employee_number, user.first_name, user.last_name, user.mail, None, user.job_title, team,
               user.dt_contract_start]  # fmt: skip
        extended = user.extended_data or {}
        extra = [
            extended.get(source) if source.startswith("e_") else getattr(user, ATTRIBUTES[source])
            for source in self._settings.extra_columns.values()
        ]
        return [cell(value) for value in (*own, *extra)]

    def _final_rows(self) -> Iterator[list[str]]:
        """The draft's rows with their managers' e-mails; people sharing an e-mail are left out (Elevo keys people
        by e-mail). Fills `sent`, and `left_out` with the duplicates."""
        self.sent = []
        self.left_out = [person for person in self.left_out if not person.reason.startswith("duplicate email:")]
        with self._draft.open(encoding="utf-8", newline="") as draft:
            for lucca_id, manager_id, *cells in csv.reader(draft):
                email, name = cells[EMAIL], full_name(cells[FIRST_NAME], cells[LAST_NAME], int(lucca_id))
                if (count := self._emails[email.casefold()]) > 1:
                    reason = f"duplicate email: {count} people have {email} in Lucca (ignoring case)"
                    self.left_out.append(LeftOut(int(lucca_id), name, email, reason))
                    continue
                cells[MANAGER_EMAIL] = self._mails.get(int(manager_id), "") if manager_id else ""
                self.sent.append(Sent(int(lucca_id), email, name))
                yield cells
        self.left_out.sort(key=lambda person: person.lucca_id)


async def read_people(
    session: AsyncSession, tenant_id: uuid.UUID, settings: ElevoSettings, today: date, workdir: Path
) -> PeopleFile:
    """Page through the copy's people into a draft of the file (see the module's docstring)."""
    teams = {department.id: department.name for department in await reads.departments(session, tenant_id)}
    people = await asyncio.to_thread(PeopleFile, settings, today, teams, workdir)
    after = 0
    while page := await reads.employee_page(session, tenant_id, after, PAGE_ROWS):
        await asyncio.to_thread(people.add_page, page)
        after = page[-1].id
    return people
