"""A Cards users import of 2,000 and of 20,000 people, both partners' limits out of the way: cost per person, this
code against a baseline checkout, in the same run.

    git worktree add --detach /tmp/cards-baseline <commit>     # once: the code to compare with (e.g. main before)
    .venv/bin/python -m bench.cards_import_scale --baseline-tree /tmp/cards-baseline [--sizes 2000,20000]

One sandbox whose Lucca and Cards accounts allow 100,000 calls a second, one API process (this code). For each size
and each code (the baseline first, then this one), a tenant of its own (a Lucca account of exactly N current
employees, an empty Cards space, a Cards connector at 100,000 calls a second) and a worker process of that code
(started from that checkout, on this database: the schema is this code's, which the baseline's queries read as
theirs), which runs the directory's first full sync, then `POST …/cards/users/import {"all": true}`. Measured: the
import's wall time (its run's start to end, as the service recorded them) and the worker's CPU seconds over the
import (/proc), each per person. Targets: this code's per-person wall time and CPU at the largest size / at the
smallest <= 1.5. Exit status 0 when they hold and every import created each person exactly once, 1 otherwise.
"""

import argparse
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import httpx

from app.sandbox.demo import DEMO_API_KEY, DEMO_CARDS_SPACE, DEMO_CARDS_TOKEN, current_directory_seed_payload
from bench.harness import (
    ROOT,
    BenchError,
    Check,
    CpuSnapshot,
    Processes,
    ServiceConfig,
    create_connector_tenant,
    exit_on_sigterm,
    expect,
    finish,
    first_full_sync,
    print_table,
    private_state,
    put_off_polls,
    say,
    seed_lucca,
    start_api,
    start_lucca_sandbox,
    start_worker,
    wait_for_run,
    worker_started,
)

BENCH = "cards_import_scale"
DATABASE = "lucca_connectors_bench_cards_scale"
# Out of the way: no call of either partner waits for its limit.
OPEN_REQUESTS = 100_000
OPEN_SECONDS = 1
TARGET_RATIO = 1.5
SERVICE_SETTINGS = {"API_DATABASE_POOL_SIZE": "5", "WORKER_MAX_JOBS": "4"}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.cards_import_scale", description=__doc__.splitlines()[0])
    parser.add_argument("--baseline-tree", type=Path, required=True, help="a checkout of the code to compare with")
    parser.add_argument("--sizes", default="2000,20000", help="people per import, comma-separated")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds to wait for each import (default 1800)")
    args = parser.parse_args(argv)
    args.sizes = sorted(int(size) for size in args.sizes.split(","))
    if not (args.baseline_tree / "app" / "workers").is_dir():
        parser.error(f"{args.baseline_tree} is not a checkout of the service")
    return args


@dataclass(frozen=True)
class Import:
    code: str
    people: int
    status: str
    created: int
    wall_seconds: float
    worker_cpu_seconds: float
    cards_emails_once: bool

    @property
    def wall_ms(self) -> float:
        return self.wall_seconds * 1000 / self.people

    @property
    def cpu_ms(self) -> float:
        return self.worker_cpu_seconds * 1000 / self.people


def one_import(
    processes: Processes, config: ServiceConfig, sandbox: str, api: httpx.Client, code: str, tree: Path, people: int
) -> Import:
    account = f"scale-{code}-{people}"
    with httpx.Client(base_url=sandbox, timeout=300.0) as control:
        seed = current_directory_seed_payload(people, window_seconds=OPEN_SECONDS, requests_per_window=OPEN_REQUESTS)
        seed_lucca(control, account, seed)
        space = {"api_token": DEMO_CARDS_TOKEN, "space_id": DEMO_CARDS_SPACE,
                 "window_seconds": OPEN_SECONDS, "requests_per_window": OPEN_REQUESTS}  # fmt: skip
        expect(control.put(f"/_sandbox/cards/accounts/{account}", json=space), 204, "seed Cards")
        limit = {"requests": OPEN_REQUESTS, "per_seconds": OPEN_SECONDS}
        lucca = {"base_url": f"{sandbox}/{account}", "api_key": DEMO_API_KEY, "rate_limit": limit}
        settings = {"api_base_url": f"{sandbox}/cards/{account}/v1", "api_token": DEMO_CARDS_TOKEN,
                    "space_id": DEMO_CARDS_SPACE, "rate_limit": limit}  # fmt: skip
        tenant = create_connector_tenant(api, config, account, lucca, "cards", settings)
        worker = start_worker(processes, config, name=f"worker-{code}-{people}", tree=tree)
        worker_started(worker)
        say(f"{code}, {people} people: the directory's first full sync")
        first_full_sync(api, tenant, 600)
        put_off_polls(config, tenant.slug)
        before = CpuSnapshot.take(worker.process.pid)
        path = f"/api/v1/tenants/{tenant.slug}/cards/users/import"
        run_id = str(expect(api.post(path, json={"all": True}, headers=tenant.auth), 202, "import")["run_id"])
        progress = wait_for_run(api, tenant, run_id, 1800, every=2.0)
        after = CpuSnapshot.take(worker.process.pid)
        worker.stop()
        if not progress.finished:
            raise BenchError(f"{code}: the import of {people} is still {progress.run['status']}")
        users = expect(control.get(f"/_sandbox/cards/accounts/{account}/users"), 200, "read Cards")["items"]
    emails = Counter(str(user["email"]).casefold() for user in users)
    run = progress.run
    measured = Import(
        code=code,
        people=people,
        status=run["status"],
        created=int(run["counts"].get("created", 0)),
        wall_seconds=progress.seconds() or 0.0,
        worker_cpu_seconds=(after.process_seconds or 0.0) - (before.process_seconds or 0.0),
        cards_emails_once=len(emails) == people and set(emails.values()) == {1},
    )
    say(f"{code}, {people} people: {measured.wall_ms:.2f} ms wall, {measured.cpu_ms:.2f} ms worker CPU per person")
    return measured


def run_benchmark(args: argparse.Namespace) -> list[Import]:
    trees = {"baseline": args.baseline_tree.resolve(), "ledger": ROOT}
    imports = []
    with Processes(BENCH) as processes:
        config = private_state(processes, DATABASE, SERVICE_SETTINGS)
        sandbox = start_lucca_sandbox(processes, OPEN_SECONDS, OPEN_REQUESTS)
        api = start_api(processes, config)
        with httpx.Client(base_url=api.url, timeout=60.0) as client:
            for people in args.sizes:
                for code, tree in trees.items():
                    imports.append(one_import(processes, config, sandbox.url, client, code, tree, people))
    return imports


def evaluate(args: argparse.Namespace, imports: list[Import]) -> list[Check]:
    small, large = args.sizes[0], args.sizes[-1]
    by = {(found.code, found.people): found for found in imports}
    checks = [
        Check(f"{found.code}, {found.people}: run; created once each",
              f"{found.status}, {found.created}; {found.cards_emails_once}", f"succeeded, {found.people}; True",
              found.status == "succeeded" and found.created == found.people and found.cards_emails_once)
        for found in imports
    ]  # fmt: skip
    for found in imports:
        checks.append(Check(f"{found.code}, {found.people}: ms per person, wall; worker CPU",
                            f"{found.wall_ms:.2f}; {found.cpu_ms:.2f}"))  # fmt: skip
    for code in ("baseline", "ledger"):
        wall = by[code, large].wall_ms / by[code, small].wall_ms
        cpu = by[code, large].cpu_ms / by[code, small].cpu_ms
        target = f"<= {TARGET_RATIO}" if code == "ledger" else ""
        checks.append(Check(f"{code}: per person at {large} / at {small}, wall", f"{wall:.2f}", target,
                            wall <= TARGET_RATIO if target else None))  # fmt: skip
        checks.append(Check(f"{code}: per person at {large} / at {small}, worker CPU", f"{cpu:.2f}", target,
                            cpu <= TARGET_RATIO if target else None))  # fmt: skip
    return checks


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    exit_on_sigterm()
    started = time.monotonic()
    imports = run_benchmark(args)
    checks = evaluate(args, imports)
    print_table(f"Cards users import, {' and '.join(map(str, args.sizes))} people, limits out of the way", checks)
    say(f"took {time.monotonic() - started:.0f} s")
    results = {
        "options": {**vars(args), "baseline_tree": str(args.baseline_tree)},
        "imports": [vars(i) for i in imports],
    }
    return finish(BENCH, checks, results)


if __name__ == "__main__":
    sys.exit(main())
