"""Professional addresses and name comparisons, in any script (contract sections 5.1 and 7)."""

import itertools

import pytest

from app.clients.http import PartnerRejected
from app.services import work_email
from app.services.hire import says_address_taken
from app.services.names import address_part, comparable, same_name

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
        ("Иван", "Петров", "ivan.petrov@acme.fr"),
        ("Ольга", "Мар’яна", "olga.mar-yana@acme.fr"),
        ("伟", "王", "wei.wang@acme.fr"),
        ("伟", "王 伟", "wei.wang-wei@acme.fr"),
        ("Σοφία", "Παππά", "sofia.pappa@acme.fr"),
        ("محمد", "علي", "mhmd.ly@acme.fr"),
        ("さくら", "ヤマダ", "sakura.yamada@acme.fr"),
        ("Zoë", "王伟", "zoe.wangwei@acme.fr"),
        ("Anna ★", "😀 Smith ©", "anna.smith@acme.fr"),
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


@pytest.mark.parametrize(
    ("contract", "address"),
    [("ß", "ss"), ("æ", "ae"), ("ø", "o"), ("ł", "l"), ("Иван", "ivan"), ("王伟", "wangwei"), ("Σοφία", "sofia")],
)
def test_every_script_is_transliterated_as_the_contract_says(contract: str, address: str) -> None:
    assert address_part(contract) == address


@pytest.mark.parametrize("symbols", ["★", "— ★ —", "😀", "©®", "''", "...", " ", "\u0301"])
def test_a_name_of_symbols_leaves_nothing(symbols: str) -> None:
    assert address_part(symbols) == "" and comparable(symbols) == ""
    assert not same_name(symbols, symbols) and not same_name(symbols, "")


def test_comparison_ignores_case_accents_punctuation_and_spaces() -> None:
    assert comparable("  ACME  Bérlin. ") == comparable("Acme Berlin")
    assert comparable("Acme Berlin") != comparable("Acme Paris")


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("王 伟", "王  伟"),
        ("Иван Петров", "ИВАН  ПЕТРОВ"),
        ("Семён", "Семен"),
        ("Σοφία", "ΣΟΦΙΑ"),
        ("Σοφίας", "ΣΟΦΊΑΣ"),
        ("東京", "東京."),
        ("محمد", " محمد "),
        ("Zoë 王", "ZOE-王"),
        ("Søren Łukasz Groß", "Soren Lukasz Gross"),
        ("ｆｕｌｌ", "full"),
    ],
)
def test_the_same_name_in_any_script_ignoring_case_and_accents(one: str, other: str) -> None:
    assert same_name(one, other) and comparable(one) != ""


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("王伟", "李娜"),
        ("王伟", "汪伟"),  # both Wang Wei in pinyin: two people
        ("東京", "大阪"),
        ("Иван", "Ivan"),
        ("Иван Петров", "Пётр Иванов"),
        ("Σοφία", "Σοφρώνης"),
        ("محمد", "علي"),
        ("ながた", "なかた"),  # a voicing mark changes the letter
        ("कुमार", "किमार"),  # so does a Devanagari vowel sign
        ("Zoë 王", "Zoë 李"),
    ],
)
def test_different_names_in_any_script_stay_different(one: str, other: str) -> None:
    assert not same_name(one, other)


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
