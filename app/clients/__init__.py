"""Partner API clients: one class per partner, on one shared httpx.AsyncClient."""
