"""Cards users and departments: what can be imported, and the imports."""

from fastapi import APIRouter

router = APIRouter(prefix="/api/v1/tenants/{slug}/cards", tags=["cards"])
