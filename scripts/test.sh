#!/usr/bin/env bash
# Installs everything, then runs lint, formatting, types and the whole test suite
# (real PostgreSQL and Redis, real Alembic migrations, the partner sandbox and real arq workers).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install.sh
scripts/services.sh

.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy app tests bench
.venv/bin/pytest "$@"
