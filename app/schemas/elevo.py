"""Elevo: the connector's settings (contract 5.4) and the people file's preview (section 10)."""

import re
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import asyncssh
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictStr,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from app.clients.lucca import USER_FIELDS
from app.clients.ssh_keys import PRIVATE_KEY_PATTERN, UnreadableKey, derivation_problem, opened_private_key
from app.schemas.cards import FieldCode, Hour
from app.schemas.common import FieldRefused, Flag, RequestBody, String, json_integer, pattern_in_property_names
from app.schemas.connector import MASK
from app.schemas.directory_load import DIRECTORY_FIELD, DirectoryLoad

# The people file's columns (contract 10), in order; `extra_columns` follow.
COLUMNS = (
    "registration_number", "first_name", "last_name", "email", "manager_email", "job_title", "team_name",
    "arrival_date",
)  # fmt: skip
# Lucca user fields an extra column may copy: those the Lucca client reads (`department` is the team_name column).
EXTRA_USER_FIELDS = tuple(field for field in USER_FIELDS if field != "department")
SKIP_FIELD = "e_skip_elevo_sync"
MAX_EXTRA_COLUMNS = 50

# A DNS name or an IPv4 address, without scheme or port (the port has its own field).
HOST_PATTERN = r"^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$"
# One line of OpenSSH's public key format, `<algorithm> <base64> [comment]`, as a `.pub` file holds it.
HOST_KEY_PATTERN = (
    r"^(?:ssh-[a-z0-9-]+|ecdsa-sha2-[a-z0-9-]+|sk-[a-z0-9-]+@openssh\.com) [A-Za-z0-9+/]+={0,3}(?: [^\r\n\x00]*)?\n?$"
)
# Absolute POSIX directories without control characters (nor `.` and `..` segments: `no_dot_segments`).
REMOTE_DIR_PATTERN = r"^/(?:[^/\x00-\x1f\x7f]+/?)*$"
COLUMN_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9 _.-]{0,63}$"
SOURCE_PATTERN = rf"^(?:e_[A-Za-z0-9_]{{1,60}}|{'|'.join(EXTRA_USER_FIELDS)})$"


def public_host_key(value: str) -> str:
    """The server's public key in OpenSSH format, as `ssh-keyscan` or the server's `*.pub` file gives it."""
    if "PRIVATE KEY" in value:
        raise ValueError("is a private key: give the server's public host key (OpenSSH format, one line)")
    if re.fullmatch(HOST_KEY_PATTERN, value) is None:
        raise ValueError("must be the server's public key in OpenSSH format: one line, `ssh-ed25519 AAAA… [comment]`")
    try:
        asyncssh.import_public_key(value)
    except (asyncssh.KeyImportError, ValueError):
        raise ValueError("does not parse as an OpenSSH public key (check that the line is complete)") from None
    return value.rstrip("\n")


def no_dot_segments(path: str) -> str:
    if any(segment in (".", "..") for segment in path.split("/")):
        raise ValueError("must not hold `.` or `..` segments: give the directory's absolute path")
    return path


def unique_column(columns: dict[str, str]) -> dict[str, str]:
    """An extra column may not take a contract column's name (Elevo reads them ignoring case)."""
    taken = {column.casefold() for column in COLUMNS}
    clashing = [column for column in columns if column.casefold() in taken]
    if clashing:
        raise ValueError(f"{clashing[0]!r} is one of the file's own columns ({', '.join(COLUMNS)}): choose another")
    if len({column.casefold() for column in columns}) != len(columns):
        raise ValueError("holds the same column twice (names are compared ignoring case)")
    return columns


def affordable_key(key: str) -> str:
    """One private key block that can be opened here at a bounded cost (checked without deriving anything)."""
    problem = derivation_problem(key)
    if problem is not None:
        raise ValueError(problem)
    return key


Host = Annotated[StrictStr, Field(min_length=1, max_length=253, pattern=HOST_PATTERN)]
Port = Annotated[int, Field(ge=1, le=65535), BeforeValidator(json_integer)]
Username = Annotated[StrictStr, Field(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$")]
SecretText = Annotated[String, Field(min_length=1, max_length=1000)]
PrivateKey = Annotated[
    StrictStr,
    Field(min_length=1, max_length=20_000),
    AfterValidator(affordable_key),
    Field(json_schema_extra={"pattern": PRIVATE_KEY_PATTERN}),
]
HostKey = Annotated[
    StrictStr,
    AfterValidator(public_host_key),
    Field(max_length=20_000, json_schema_extra={"pattern": HOST_KEY_PATTERN}),
]
RemoteDir = Annotated[
    StrictStr, Field(min_length=1, max_length=1000, pattern=REMOTE_DIR_PATTERN), AfterValidator(no_dot_segments)
]
Column = Annotated[StrictStr, Field(pattern=COLUMN_PATTERN)]
Source = Annotated[StrictStr, Field(pattern=SOURCE_PATTERN)]
IntervalMinutes = Annotated[int, Field(ge=1, le=1440), BeforeValidator(json_integer)]


class SftpSettings(RequestBody):
    """Elevo's SFTP server, and how to sign in: a password or a private key (exactly one)."""

    host: Host = Field(description="Elevo's SFTP host (no scheme, no port). Changing it needs the secrets again.")
    port: Port = 22
    username: Username
    password: SecretText | None = Field(
        default=None,
        description='Comes back as "***". Omitted (or "***") keeps the stored one; null removes it (to switch to a '
        "private_key). Required again whenever host changes.",
    )
    private_key: PrivateKey | None = Field(
        default=None,
        validate_default=True,
        description="OpenSSH or PEM private key text (one block); an encrypted one comes with its `passphrase`. "
        "Decrypted once, when given, and kept decrypted (encrypted at rest, masked like password). Its encryption "
        "may ask for at most 2,000,000 PBKDF2 iterations (100,000 for older PKCS schemes, 256 bcrypt rounds); RSA "
        "and DSA keys up to 8,192 bits.",
    )
    passphrase: SecretText | None = Field(
        default=None,
        description="Decrypts the private_key given in the same request, once. Secret, kept encrypted and masked like "
        "password, but never used again: the key is kept decrypted.",
    )
    host_key: HostKey = Field(
        description="The server's public host key, OpenSSH format (`ssh-ed25519 AAAA…`, as `ssh-keyscan` prints it "
        "without the host name). Any other key fails the run before anything is sent."
    )
    remote_dir: RemoteDir = Field(default="/", description="Absolute directory the file is uploaded to.")

    @field_validator("private_key")
    @classmethod
    def _one_way_in(cls, value: str | None, info: ValidationInfo) -> str | None:
        if "password" not in info.data:
            return value  # the password has its own error already
        if (info.data["password"] is None) == (value is None):
            raise ValueError("give either password or private_key: exactly one (set the other to null)")
        return value

    @field_validator("passphrase")
    @classmethod
    def _with_a_key(cls, value: str | None, info: ValidationInfo) -> str | None:
        # A key that failed has its own error, and is not in `info.data`.
        if value is not None and "private_key" in info.data and info.data["private_key"] is None:
            raise ValueError("only goes with a private_key (set it to null to sign in with a password)")
        return value


# Secrets: their errors, like a RequestBody's, never quote them.
GivenKey = TypeAdapter(PrivateKey, config=ConfigDict(hide_input_in_errors=True))
GivenPassphrase = TypeAdapter(SecretText | None, config=ConfigDict(hide_input_in_errors=True))


async def open_given_key(given: dict[str, Any], release: Callable[[], Awaitable[None]]) -> dict[str, Any]:
    """The settings a PUT or PATCH gives, with the private key it gives decrypted (off the event loop, after
    `release`: it may take a second), so that no run, check, preview or PATCH derives its passphrase again. What
    does not pass the fields' own rules is left as given, for validation to name."""
    sftp = given.get("sftp")
    if not isinstance(sftp, dict):
        return given
    key, passphrase = sftp.get("private_key"), sftp.get("passphrase")
    if key in (None, MASK):
        if passphrase not in (None, MASK):
            raise FieldRefused("sftp.passphrase", "only goes with the private_key it opens, given in the same request")
        return given
    try:
        key = GivenKey.validate_python(key)
        passphrase = GivenPassphrase.validate_python(None if passphrase == MASK else passphrase)
    except ValidationError:
        return given
    await release()
    try:
        opened = await opened_private_key(key, passphrase)
    except UnreadableKey as refused:
        raise FieldRefused(f"sftp.{refused.field}", str(refused)) from None
    return {**given, "sftp": {**sftp, "private_key": opened, "passphrase": passphrase}}


class ElevoSettings(RequestBody):
    sftp: SftpSettings
    skip_field_code: FieldCode = Field(
        default=SKIP_FIELD, description="Lucca checkbox (e_ code): people with it checked are left out of the file."
    )
    extra_columns: Annotated[dict[Column, Source], AfterValidator(unique_column)] = Field(
        default_factory=dict,
        max_length=MAX_EXTRA_COLUMNS,
        description="CSV column → Lucca user field (e.g. `personalEmail`) or extended-data code (`e_…`), written "
        "after the file's own columns, in this order. Text as is, numbers, dates as YYYY-MM-DD, a list entry as its "
        "name, a checkbox as true/false, several values joined with `; `, missing: empty.",
        json_schema_extra=pattern_in_property_names,
    )
    schedule_enabled: Flag = Field(default=True, description="Upload the file every night (contract 5.5).")
    schedule_hour: Hour = Field(
        default=3, description="Local hour (tenant timezone) after which the nightly file is due."
    )
    push_on_change: Flag = Field(
        default=False,
        description="Also upload a new file, built from the directory's copy, when a change in Lucca changes a row of "
        "the file or who is in it (a run with trigger `change`); nothing is uploaded when the file would be the "
        "same as the last one. The nightly file stays.",
    )
    min_interval_minutes: IntervalMinutes = Field(
        default=10,
        description="With push_on_change: minutes at least between an upload (nightly, asked for or on change) and "
        "the next one on change; changes within the interval go in that next file.",
    )


class LeftOutPerson(BaseModel):
    lucca_id: int
    name: str
    email: str | None
    reason: str = Field(
        description="`departed: …`, `skip flag: …`, `no email: …` or `duplicate email: …`, then plain words."
    )


class ElevoPreview(BaseModel):
    rows: list[dict[str, str]] = Field(description="The file's rows, each keyed by column, in the file's order.")
    left_out: list[LeftOutPerson]
    directory: DirectoryLoad = DIRECTORY_FIELD
