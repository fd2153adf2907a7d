#!/usr/bin/env bash
# Installs everything, then runs lint, formatting, types and the whole test suite
# (real PostgreSQL and Redis, real Alembic migrations, the partner sandbox and real arq workers).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install.sh
scripts/services.sh
# The console's browser tests drive Debian's Chromium, headless, through its chromedriver: installed when missing.
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
fi

.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy app tests bench
.venv/bin/pytest "$@"
