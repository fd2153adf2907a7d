#!/usr/bin/env bash
# Installs everything and runs the service locally: the partner sandbox (standing in for Lucca, Taleez, Cards and
# Elevo's SFTP server), a mail server keeping what it receives (the alerts' e-mails), the API and a worker, with a
# demo tenant. Prints curls for every flow and a console link.
# Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install.sh
scripts/services.sh

export APP_ENV=${APP_ENV:-development}
export DATABASE_URL=${DATABASE_URL:-postgresql+asyncpg://postgres@127.0.0.1:5432/lucca_connectors}
export REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379/0}
export ALLOW_HTTP_UPSTREAMS=true
export ADMIN_TOKEN=${ADMIN_TOKEN:-$(.venv/bin/python -c 'import secrets, sys; sys.stdout.write(secrets.token_urlsafe(24))')}
API_PORT=${API_PORT:-8000}
SANDBOX_PORT=${SANDBOX_PORT:-8100}
SFTP_PORT=${SFTP_PORT:-8122}
SMTP_PORT=${SMTP_PORT:-8025}
# The alerts' e-mails go to the local SMTP sink started below, which keeps each message as a file (the demo's
# output says where, and how to read them).
export SMTP_URL=${SMTP_URL:-smtp://127.0.0.1:$SMTP_PORT?from=alerts@lucca-connectors.localhost}
# Where Lucca (here the sandbox) reaches the API: the demo tenant gets Lucca's webhooks (http:// outside production).
export PUBLIC_BASE_URL=${PUBLIC_BASE_URL:-http://127.0.0.1:$API_PORT}

.venv/bin/python -m app.dev.create_database
.venv/bin/alembic upgrade head

pids=()
stop() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap stop EXIT INT TERM

.venv/bin/python -m app.sandbox --host 127.0.0.1 --port "$SANDBOX_PORT" --sftp-port "$SFTP_PORT" & pids+=($!)
.venv/bin/python -m app.dev.smtp_sink --host 127.0.0.1 --port "$SMTP_PORT" & pids+=($!)
.venv/bin/uvicorn app.main:app --host 127.0.0.1 --port "$API_PORT" & pids+=($!)
.venv/bin/arq app.workers.WorkerSettings & pids+=($!)

for _ in $(seq 1 100); do
  if curl -fsS "http://127.0.0.1:$API_PORT/readyz" >/dev/null 2>&1 \
    && curl -fsS "http://127.0.0.1:$SANDBOX_PORT/_sandbox/healthz" >/dev/null 2>&1; then
    break
  fi
  sleep 0.2
done

.venv/bin/python -m app.sandbox.demo_tenant --api "http://127.0.0.1:$API_PORT" \
  --sandbox "http://127.0.0.1:$SANDBOX_PORT" --sftp-port "$SFTP_PORT" --admin-token "$ADMIN_TOKEN"
echo "Operator token (ADMIN_TOKEN): $ADMIN_TOKEN"
echo "API docs: http://127.0.0.1:$API_PORT/docs. Press Ctrl-C to stop."
wait -n "${pids[@]}"
