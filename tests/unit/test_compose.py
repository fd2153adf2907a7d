"""compose.yaml (no Docker engine here): it parses, runs the contract's section 1 commands from the Dockerfile's image,
starts the migration once before the API and workers, checks every long-running service's health, and the README
shows it beside the Dockerfile."""

import json
import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
# CONTRACT section 1: the three commands an operator runs (the API's host and port are the deployment's).
MIGRATE = ["alembic", "upgrade", "head"]
API = ["uvicorn", "app.main:app"]
WORKER = ["arq", "app.workers.WorkerSettings"]


def services() -> dict[str, dict[str, Any]]:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    found: dict[str, dict[str, Any]] = compose["services"]
    return found


def dockerfile_command() -> list[str]:
    [line] = [line for line in (ROOT / "Dockerfile").read_text().splitlines() if line.startswith("CMD ")]
    command: list[str] = json.loads(line.removeprefix("CMD "))
    return command


def test_it_runs_postgres_redis_the_migration_two_apis_and_two_workers() -> None:
    found = services()
    assert set(found) == {"postgres", "redis", "migrate", "api-1", "api-2", "worker-1", "worker-2"}
    assert found["migrate"]["command"] == MIGRATE and found["migrate"]["restart"] == "no"
    assert found["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    for name in ("api-1", "api-2"):
        command = found[name]["command"]
        # The image's own command (the contract's, behind a proxy), serving on the port its health check asks.
        assert command[:2] == API and command == dockerfile_command()
        port = command[command.index("--port") + 1]
        assert f"http://127.0.0.1:{port}/readyz" in " ".join(found[name]["healthcheck"]["test"])
    assert {found[name]["ports"][0] for name in ("api-1", "api-2")} == {"127.0.0.1:8001:8000", "127.0.0.1:8002:8000"}
    for name in ("worker-1", "worker-2"):
        assert found[name]["command"] == WORKER
        assert found[name]["healthcheck"]["test"] == ["CMD", "arq", "--check", *WORKER[1:]]


def test_the_processes_start_after_the_migration_and_share_one_postgres_and_redis() -> None:
    found = services()
    for name in ("migrate", "api-1", "api-2", "worker-1", "worker-2"):
        service = found[name]
        assert service["build"] == "." and service["image"] == "lucca-connectors"
        environment = service["environment"]
        assert environment["APP_ENV"] == "production"
        assert re.fullmatch(
            r"postgresql\+asyncpg://postgres:\$\{POSTGRES_PASSWORD:\?[^}]+\}@postgres:5432/\w+",
            environment["DATABASE_URL"],
        )
        assert environment["REDIS_URL"] == "redis://redis:6379/0"
        # No secret has a default: compose refuses to start without them.
        for secret in ("SECRET_KEY", "ADMIN_TOKEN"):
            assert environment[secret].startswith(f"${{{secret}:?")
        if name != "migrate":
            assert service["depends_on"] == {
                "migrate": {"condition": "service_completed_successfully"},
                "redis": {"condition": "service_healthy"},
            }
            assert service["restart"] == "unless-stopped"
    assert "pg_isready" in found["postgres"]["healthcheck"]["test"]
    assert found["redis"]["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]


def test_the_readme_shows_compose_beside_the_dockerfile_with_the_same_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    production = readme[readme.index("## Running it in production") :]
    production = production[: production.index("\n## ", 1)]
    assert "docker build" in production and "compose.yaml" in production and "docker compose up" in production
    for command in (MIGRATE, API, WORKER):
        assert " ".join(command) in production
