"""What a failed run's problem says: plain words, the person's name, no e-mail address, no secret."""

import uuid

from app.alerts.sources import credentials_problem, run_problem
from app.models import Run


def failed_run(status: str, error: str | None, candidate: dict[str, str] | None = None) -> Run:
    return Run(
        id=uuid.uuid4(), tenant_id=uuid.uuid4(), connector="softgarden", operation="candidate_hired",
        trigger="webhook", status=status, counts={"total": 3, "failed": 2}, error=error,
        input={"candidate": candidate} if candidate else {},
    )  # fmt: skip


def test_a_hire_problem_names_the_candidate_and_leaves_out_addresses() -> None:
    run = failed_run(
        "failed",
        "The login zoe.m@gmail.com is already used by someone else in Lucca.",
        {"firstName": "Zoë", "lastName": "Müller", "email": "zoe.m@gmail.com"},
    )
    problem = run_problem(run)
    assert problem.key == "runs:softgarden:candidate_hired" and problem.title == "Softgarden hires are failing"
    assert problem.message == "Zoë Müller: The login (an e-mail address) is already used by someone else in Lucca."


def test_a_partial_run_without_an_error_says_how_many_failed() -> None:
    problem = run_problem(failed_run("partial", None))
    assert problem.title == "Softgarden hires are partly failing" and problem.message == "2 of 3 items failed."


def test_refused_credentials_name_the_partner_and_what_to_do() -> None:
    problem = credentials_problem("cards", "Cards refused the API token (401).")
    assert problem.key == "credentials:cards"
    assert problem.title == "Cards refused the stored credentials (connection broken)"
    assert problem.message.startswith("Cards refused the API token (401). Give the Cards credentials again")
