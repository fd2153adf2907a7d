"""Cards statistics: the push of training statistics into Lucca, on demand."""

from fastapi import APIRouter

router = APIRouter(prefix="/api/v1/tenants/{slug}/cards/stats", tags=["cards"])
