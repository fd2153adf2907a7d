# One image for both processes: the API (default command) and the worker (`arq app.workers.WorkerSettings`).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 APP_ENV=production
WORKDIR /srv

COPY pyproject.toml ./
COPY app ./app
RUN pip install --no-cache-dir . && useradd --system --no-create-home service
COPY alembic.ini ./
COPY migrations ./migrations

USER service
EXPOSE 8000
# Migrate once per release (`docker run IMAGE alembic upgrade head`), then start several of each process.
CMD ["uvicorn", "app.main:app", "--host", "0.0.0.0", "--port", "8000", "--proxy-headers"]
