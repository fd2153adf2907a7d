"""Elevo: the people file's preview, and a sync now."""

from fastapi import APIRouter

router = APIRouter(prefix="/api/v1/tenants/{slug}/elevo", tags=["elevo"])
