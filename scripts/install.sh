#!/usr/bin/env bash
# Creates .venv (Python 3.11+) and installs exactly what requirements-dev.lock pins, hashes checked, so a fresh
# clone gets the versions CI tested. The project itself runs from the repository root (nothing to build).
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check --require-hashes --no-deps -r requirements-dev.lock
