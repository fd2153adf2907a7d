"""Professional addresses and name comparisons (contract section 5.1)."""

import itertools

import pytest

from app.clients.http import PartnerRejected
from app.services import work_email
from app.services.hire import says_address_taken
from app.services.names import comparable

TEMPLATE = "{first_name}.{last_name}@acme.fr"


@pytest.mark.parametrize(
    ("first", "last", "address"),
    [
        ("Zoë", "Müller", "zoe.muller@acme.fr"),
        ("Jean-Loup", "O'Brien", "jean-loup.o-brien@acme.fr"),
        ("Ana María", "Gómez Ruiz", "ana-maria.gomez-ruiz@acme.fr"),
        ("Jürgen", "Groß", "jurgen.gross@acme.fr"),
        ("Søren", "Æbelø", "soren.aebelo@acme.fr"),
        ("Łukasz", "Wałęsa", "lukasz.walesa@acme.fr"),
        (" -Marie--Claire- ", "d’Arc (née) ", "marie-claire.d-arc-nee@acme.fr"),
    ],
)
def test_each_value_is_normalised_on_its_own(first: str, last: str, address: str) -> None:
    assert work_email.render(TEMPLATE, first, last) == address


def test_namesake_suffixes_go_before_the_at() -> None:
    assert list(itertools.islice(work_email.candidates("jean.dupont@acme.fr"), 3)) == [
        "jean.dupont@acme.fr",
        "jean.dupont2@acme.fr",
        "jean.dupont3@acme.fr",
    ]


@pytest.mark.parametrize(
    "template",
    ["{first}.{last_name}@acme.fr", "{first_name!r}@acme.fr", "{first_name:>5}@acme.fr", "{first_name}", "{"],
)
def test_bad_templates_are_refused(template: str) -> None:
    with pytest.raises(ValueError):
        work_email.check_template(template)


def test_comparison_ignores_case_accents_punctuation_and_spaces() -> None:
    assert comparable("  ACME  Bérlin. ") == comparable("Acme Berlin")
    assert comparable("Acme Berlin") != comparable("Acme Paris")


@pytest.mark.parametrize(
    ("status", "message", "taken"),
    [
        (400, "The login 'jean.dupont@acme.fr' is already in use", True),
        (400, "L'identifiant jean.dupont@acme.fr est déjà utilisé", True),
        (400, "A user with this mail already exists", True),
        (400, "departmentId: 99 does not exist", False),
        (400, "login is required", False),
        (400, "legalEntityId is required", False),
        (403, "login already in use", False),
    ],
)
def test_lucca_refusals_that_mean_the_address_is_taken(status: int, message: str, taken: bool) -> None:
    assert says_address_taken(PartnerRejected("lucca", status, message)) is taken
