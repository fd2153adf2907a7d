"""arq worker: `arq app.workers.WorkerSettings`."""

from app.workers.settings import WorkerSettings

__all__ = ["WorkerSettings"]
