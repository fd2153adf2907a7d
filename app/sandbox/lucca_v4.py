"""Lucca's v4 organization structure API (API key): establishments, departments, legal units."""

import base64
import binascii
from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.datastructures import QueryParams

from app.sandbox.lucca_filters import Filter, parse_filters
from app.sandbox.lucca_gate import AccountDep, LegacyRoute
from app.sandbox.lucca_models import Department, Establishment, LegalUnit, LuccaError, LuccaModel, aliases, lookup
from app.sandbox.lucca_state import LuccaAccount

MAX_STRUCTURE_PAGE = 100
DEFAULT_STRUCTURE_PAGE = 10

STRUCTURE_MODELS: dict[str, type[LuccaModel]] = {
    "establishments": Establishment,
    "departments": Department,
    "legal-units": LegalUnit,
}


def structure_items(account: LuccaAccount, kind: str) -> Mapping[int, LuccaModel]:
    """The account's objects of one v4 structure collection."""
    collections: dict[str, Mapping[int, LuccaModel]] = {
        "establishments": account.establishments,
        "departments": account.departments,
        "legal-units": account.legal_units,
    }
    if kind not in collections:
        raise LuccaError(404, f"Unknown collection '{kind}'")
    return collections[kind]


def structure_record(account: LuccaAccount, item: LuccaModel) -> dict[str, Any]:
    """A v4 object; an establishment carries its `legalUnit`."""
    record = item.model_dump(by_alias=True)
    if isinstance(item, Establishment):
        unit = lookup(account.legal_units, item.legal_unit_id)
        record["legalUnit"] = None if unit is None else {"id": unit.id, "name": unit.name}
    return record


def encode_cursor(offset: int) -> str:
    """An opaque v4 page cursor."""
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """The offset behind a cursor this sandbox returned."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        prefix, _, offset = text.partition(":")
        if prefix == "offset" and offset.isdigit():
            return int(offset)
    except (binascii.Error, UnicodeDecodeError):
        pass
    raise LuccaError(400, f"page '{cursor}' is neither a page number nor a cursor")


def parse_page(params: QueryParams) -> tuple[int, int]:
    """v4 paging: `limit` (default 10, at most 100) and `page`, a 1-based number or a cursor."""
    raw_limit = params.get("limit", str(DEFAULT_STRUCTURE_PAGE))
    if not raw_limit.isdigit() or not 0 < int(raw_limit) <= MAX_STRUCTURE_PAGE:
        raise LuccaError(400, f"limit must be between 1 and {MAX_STRUCTURE_PAGE}")
    limit = int(raw_limit)
    page = params.get("page")
    if page is None:
        return 0, limit
    if not page.isdigit():
        return decode_cursor(page), limit
    if int(page) < 1:
        raise LuccaError(400, "page numbers start at 1")
    return (int(page) - 1) * limit, limit


def select_structure(account: LuccaAccount, kind: str, params: QueryParams) -> list[dict[str, Any]]:
    """The collection's objects matching the query, by id; archived ones only when asked."""
    items = structure_items(account, kind)
    properties = aliases(STRUCTURE_MODELS[kind])
    filters = parse_filters(params, properties)
    archived_asked = any(condition.prop == "isArchived" for condition in filters)
    if "isArchived" in properties and not archived_asked:
        filters.append(Filter("isArchived", "equal", ["false"]))
    records = [structure_record(account, item) for _, item in sorted(items.items())]
    return [record for record in records if all(f.accepts(record.get(f.prop)) for f in filters)]


def structure_page(records: list[dict[str, Any]], params: QueryParams) -> dict[str, Any]:
    """One v4 page; `count`, `prev` and `next` only when `fields.root` asks for them."""
    offset, limit = parse_page(params)
    body: dict[str, Any] = {"items": records[offset : offset + limit]}
    root = {name.strip() for name in params.get("fields.root", "").split(",")}
    if "count" in root:
        body["count"] = len(records)
    if "prev" in root:
        body["prev"] = encode_cursor(max(0, offset - limit)) if offset > 0 else None
    if "next" in root:
        body["next"] = encode_cursor(offset + limit) if offset + limit < len(records) else None
    return body


router = APIRouter(prefix="/{account}", route_class=LegacyRoute, tags=["lucca"])


@router.get("/organization/structure/api/{kind}")
async def list_structure(kind: str, request: Request, lucca: AccountDep) -> JSONResponse:
    """v4 establishments, departments or legal-units: `{"items": [...]}`, limit/page paging."""
    records = select_structure(lucca, kind, request.query_params)
    return JSONResponse(structure_page(records, request.query_params))


@router.get("/organization/structure/api/{kind}/{item_id}")
async def get_structure_item(kind: str, item_id: int, lucca: AccountDep) -> JSONResponse:
    """One v4 establishment, department or legal unit, archived or not."""
    item = structure_items(lucca, kind).get(item_id)
    if item is None:
        raise LuccaError(404, f"No {kind} item with id {item_id}")
    return JSONResponse(structure_record(lucca, item))
