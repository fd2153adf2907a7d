"""Writing users the way Lucca checks them (v3 writes and the sandbox's controls): validation, references, the
extended data's value rows."""

from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any

from fastapi import Request
from pydantic import ValidationError

from app.sandbox.faults import describe_errors
from app.sandbox.lucca_models import USER_PROPERTIES, LuccaError, User, lookup
from app.sandbox.lucca_state import LuccaAccount

WRITABLE_USER_FIELDS = frozenset(USER_PROPERTIES) - {"id", "modifiedAt", "name"}
REQUIRED_USER_FIELDS = ("firstName", "lastName", "login", "legalEntityId", "departmentId", "rolePrincipalId")


async def read_user_body(request: Request) -> dict[str, Any]:
    """The JSON user body, flat or wrapped in `{"data": {...}}`."""
    try:
        body = await request.json()
    except ValueError as exc:
        raise LuccaError(400, "The body is not valid JSON") from exc
    if isinstance(body, dict) and set(body) == {"data"} and isinstance(body["data"], dict):
        body = body["data"]
    if not isinstance(body, dict):
        raise LuccaError(400, "The body must be a JSON object")
    return body


def check_required(body: Mapping[str, Any], required: Iterable[str], partial: bool) -> None:
    """Refuses a missing (or, in an update, emptied) required field."""
    for name in required:
        if (name in body or not partial) and body.get(name) in (None, ""):
            raise LuccaError(400, f"Invalid user: {name} is required")


def build_user(base: dict[str, Any], body: Mapping[str, Any]) -> User:
    """`base` updated with the body's known user fields, validated."""
    changes = {name: value for name, value in body.items() if name in WRITABLE_USER_FIELDS}
    try:
        return User.model_validate({**base, **changes})
    except ValidationError as exc:
        raise LuccaError(400, f"Invalid user: {describe_errors(exc.errors())}") from exc


def check_establishment(account: LuccaAccount, establishment_id: int | None) -> None:
    """A user's `legalEntityId` must be an existing, non-archived establishment."""
    establishment = lookup(account.establishments, establishment_id)
    if establishment is None:
        raise LuccaError(400, f"legalEntityId {establishment_id} is not an existing establishment")
    if establishment.is_archived:
        raise LuccaError(400, f"establishment {establishment_id} ({establishment.name}) is archived")


def check_department(account: LuccaAccount, department_id: int | None) -> None:
    """A user's `departmentId` must be an existing department."""
    if lookup(account.departments, department_id) is None:
        raise LuccaError(400, f"departmentId {department_id} is not an existing department")


def check_manager(account: LuccaAccount, manager_id: int | None) -> None:
    """A manager, when given, must be a user whose contract has not ended."""
    if manager_id is None:
        return
    manager = account.users.get(manager_id)
    if manager is None:
        raise LuccaError(400, f"managerId {manager_id} is not an existing user")
    if manager.has_left(date.today().isoformat()):
        raise LuccaError(400, f"manager {manager_id} is not an active employee")


def check_login_free(account: LuccaAccount, user: User) -> None:
    """A login belongs to one user only, former employees included, ignoring case."""
    login = (user.login or "").casefold()
    for other in account.users.values():
        if other.id != user.id and (other.login or "").casefold() == login:
            raise LuccaError(400, f"The login '{user.login}' is already in use")


def check_references(account: LuccaAccount, user: User, body: Mapping[str, Any]) -> None:
    """Checks the references the body sets against the account's data."""
    if "legalEntityId" in body:
        check_establishment(account, user.legal_entity_id)
    if "departmentId" in body:
        check_department(account, user.department_id)
    if "managerId" in body:
        check_manager(account, user.manager_id)
    if "login" in body:
        check_login_free(account, user)


def merge_value_rows(account: LuccaAccount, rows: list[Any], changes: list[Any], key: str) -> list[Any] | None:
    """A multi-value field: id 0/missing appends, a known id updates, `"value": null` deletes."""
    merged = {row["id"]: row for row in rows if isinstance(row, dict)}
    for change in changes:
        if not isinstance(change, dict):
            raise LuccaError(400, f"{key}: each value must be an object with a 'value'")
        row_id, value = change.get("id") or 0, change.get("value")
        if row_id == 0:
            if value is not None:
                new_id = account.new_value_id()
                merged[new_id] = {"id": new_id, "value": value}
        elif row_id not in merged:
            raise LuccaError(400, f"{key} has no value with id {row_id}")
        elif value is None:
            del merged[row_id]
        else:
            merged[row_id] = {"id": row_id, "value": value}
    return list(merged.values()) or None


def merge_single_value(account: LuccaAccount, current: Any, change: Any) -> dict[str, Any] | None:
    """A single-value field: `{"value": x}` (or a bare x) sets it, `"value": null` deletes it."""
    value = change.get("value") if isinstance(change, dict) else change
    if value is None:
        return None
    value_id = current["id"] if isinstance(current, dict) else account.new_value_id()
    return {"id": value_id, "value": value}


def write_extended_data(account: LuccaAccount, user: User, body: Mapping[str, Any]) -> None:
    """Stores the `e_*` keys written at the root of the body into the user's `extendedData`."""
    for key, change in body.items():
        if not key.startswith("e_"):
            continue
        current = user.extended_data.get(key)
        if isinstance(change, list):
            rows = current if isinstance(current, list) else []
            merged: Any = merge_value_rows(account, rows, change, key)
        else:
            merged = merge_single_value(account, current, change)
        if merged is None:
            user.extended_data.pop(key, None)
        else:
            user.extended_data[key] = merged
