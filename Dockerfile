# One image for both processes: the API (default command) and the worker (`arq app.workers.WorkerSettings`).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 APP_ENV=production LOG_FORMAT=json
WORKDIR /srv

# Exactly the pinned runtime dependencies (hashes checked); the code runs from /srv, as from a checkout.
COPY requirements.lock ./
RUN pip install --no-cache-dir --require-hashes --no-deps -r requirements.lock && useradd --system --no-create-home service
COPY app ./app
COPY alembic.ini ./
COPY migrations ./migrations

USER service
EXPOSE 8000
# Migrate once per release (`docker run IMAGE alembic upgrade head`), then start several of each process.
CMD ["uvicorn", "app.main:app", "--host", "0.0.0.0", "--port", "8000", "--proxy-headers"]
