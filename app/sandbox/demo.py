"""The demo tenant's partner accounts: Acme on Lucca (three establishments, departments, people), Taleez and Cards."""

from datetime import date, timedelta
from typing import Any

from app.sandbox.cards import CardsAccountSeed
from app.sandbox.lucca_models import LuccaAccountSeed
from app.sandbox.taleez import TaleezAccountSeed

DEMO_ACCOUNT = "demo"
DEMO_API_KEY = "demo-lucca-api-key"
USER_ROLE_ID = 55
# The demo account's OAuth client (Lucca's "integration key"), with every scope the service's features use.
DEMO_OAUTH_CLIENT_ID = "demo-oauth-client"
DEMO_OAUTH_CLIENT_SECRET = "demo-oauth-secret"  # noqa: S105 (a public demo value, like the Lucca demo key)
DEMO_OAUTH_SCOPES = (
    "employees.readonly",
    "employments.readonly",
    "job-positions.readonly",
    "departments.readonly",
    "business-establishments.readonly",
    "legal-entities.readonly",
    "webhook-endpoints.readwrite",
)
DEMO_TALEEZ_ACCOUNT = "demo"
DEMO_TALEEZ_SECRET = "demo-taleez-secret"  # noqa: S105 (a public demo value, like the Lucca demo key)
# 2026-01-05 09:00:00 UTC, fixed so the demo answers the same every run.
DEMO_TALEEZ_CREATED = 1767603600
DEMO_CARDS_ACCOUNT = "demo"
DEMO_CARDS_TOKEN = "demo-cards-api-token"  # noqa: S105 (a public demo value)
DEMO_CARDS_SPACE = "acme"


def demo_user(user_id: int, first: str, last: str, department_id: int, **extra: Any) -> dict[str, Any]:
    """One Acme employee of the Paris establishment, in Lucca's v3 shape."""
    login = f"{first}.{last}@acme.fr".lower()
    return {
        "id": user_id,
        "firstName": first,
        "lastName": last,
        "login": login,
        "mail": login,
        "legalEntityId": 1,
        "departmentId": department_id,
        "rolePrincipalId": USER_ROLE_ID,
        "dtContractEnd": None,
        **extra,
    }


def demo_seed_payload() -> dict[str, Any]:
    """The body of `PUT /_sandbox/lucca/accounts/demo` that builds the demo account."""
    return {
        "api_key": DEMO_API_KEY,
        "legal_units": [{"id": 1, "name": "Acme SAS", "code": "ACME", "countryId": "FRA"}],
        "establishments": [
            {"id": 1, "name": "Acme Paris", "legalUnitId": 1, "code": "PAR", "timezoneId": "Europe/Paris"},
            {"id": 2, "name": "Acme Berlin", "legalUnitId": 1, "code": "BER", "timezoneId": "Europe/Berlin"},
            {"id": 3, "name": "Acme Lyon", "legalUnitId": 1, "code": "LYS", "isArchived": True},
        ],
        "departments": [
            {"id": 10, "name": "Engineering", "code": "ENG", "hierarchy": "/10/", "headId": 100},
            {"id": 11, "name": "Sales", "code": "SALES", "hierarchy": "/11/", "headId": 101},
            {"id": 12, "name": "People", "code": "PEOPLE", "hierarchy": "/12/", "headId": None},
        ],
        "roles": [{"id": USER_ROLE_ID, "name": "User"}],
        "oauth_clients": [
            {
                "client_id": DEMO_OAUTH_CLIENT_ID,
                "client_secret": DEMO_OAUTH_CLIENT_SECRET,
                "scopes": list(DEMO_OAUTH_SCOPES),
            }
        ],
        "users": [
            demo_user(100, "Claire", "Martin", 10, dtContractStart="2019-03-01", jobTitle="CTO"),
            demo_user(
                101,
                "Paul",
                "Durand",
                11,
                dtContractStart="2018-01-15",
                dtContractEnd="2024-06-30",
                jobTitle="Head of Sales",
            ),
            demo_user(102, "Jean", "Dupont", 10, dtContractStart="2021-09-01", jobTitle="Developer", managerId=100),
        ],
    }


# A large directory's names: 40 x 50 distinct pairs (none of the demo's people), so from 2,000 employees on every
# name is held by several namesakes (`ada.adams@`, `ada.adams2@`, …).
DIRECTORY_FIRST_NAMES = (
    "Ada", "Basile", "Cyril", "Delphine", "Emile", "Flore", "Gilles", "Helene", "Irene", "Jules", "Karine", "Lucien",
    "Manon", "Noel", "Odile", "Pierre", "Regine", "Simon", "Therese", "Urbain", "Valentin", "Xavier", "Yvette",
    "Zacharie", "Agathe", "Benoit", "Colette", "Denis", "Eloise", "Fabien", "Gisele", "Hugo", "Isabelle", "Joel",
    "Laure", "Marius", "Nina", "Olivier", "Pauline", "Romain",
)  # fmt: skip
DIRECTORY_LAST_NAMES = (
    "Adams", "Blanc", "Caron", "Dumas", "Fabre", "Garnier", "Henry", "Jacob", "Lambert", "Lemaire", "Marchand",
    "Mercier", "Noel", "Olivier", "Perrin", "Renard", "Roche", "Roussel", "Simon", "Vidal", "Aubert", "Barbier",
    "Brun", "Chevalier", "Clement", "Colin", "David", "Denis", "Fleury", "Fontaine", "Gauthier", "Girard", "Guerin",
    "Joly", "Lacroix", "Leclerc", "Legrand", "Leroy", "Lucas", "Meyer", "Morel", "Muller", "Nicolas", "Picard",
    "Riviere", "Robin", "Rolland", "Roy", "Schmitt", "Vincent",
)  # fmt: skip
DIRECTORY_FIRST_ID = 1000


def directory_user(index: int, *, leavers: bool = True) -> dict[str, Any]:
    """The `index`-th employee of a generated directory: namesakes get suffixed logins, one in nine has left
    (none with `leavers=False`)."""
    first = DIRECTORY_FIRST_NAMES[index % len(DIRECTORY_FIRST_NAMES)]
    last = DIRECTORY_LAST_NAMES[(index // len(DIRECTORY_FIRST_NAMES)) % len(DIRECTORY_LAST_NAMES)]
    occurrence = index // (len(DIRECTORY_FIRST_NAMES) * len(DIRECTORY_LAST_NAMES))
    login = f"{first}.{last}{occurrence + 1 if occurrence else ''}@acme.fr".lower()
    start = date(2012, 1, 2) + timedelta(days=index * 37 % 5000)
    end = (start + timedelta(days=400)).isoformat() if leavers and index % 9 == 8 else None
    return {
        **demo_user(DIRECTORY_FIRST_ID + index, first, last, 10 + index % 3, dtContractStart=start.isoformat()),
        "login": login,
        "mail": login,
        "personalEmail": f"{first}.{last}.{index}@perso.example".lower(),
        "dtContractEnd": end,
    }


def directory_seed_payload(employees: int, *, leavers: bool = True, **extra: Any) -> dict[str, Any]:
    """The demo account with `employees` generated people besides its own (their ids from 1000)."""
    seed = demo_seed_payload()
    seed["users"] += [directory_user(index, leavers=leavers) for index in range(employees)]
    return {**seed, **extra}


def current_directory_seed_payload(employees: int, **extra: Any) -> dict[str, Any]:
    """The demo account's structure with exactly `employees` generated people, all current and each with a work
    mail of their own (the demo's people left out): a directory every one of whom can be a Cards user."""
    seed = directory_seed_payload(employees, leavers=False, **extra)
    return {**seed, "users": [user for user in seed["users"] if user["id"] >= DIRECTORY_FIRST_ID]}


def demo_seed() -> LuccaAccountSeed:
    """The demo account's seed, validated."""
    return LuccaAccountSeed.model_validate(demo_seed_payload())


def demo_candidate(candidate_id: int, first: str, last: str, **extra: Any) -> dict[str, Any]:
    """One Taleez candidate of Acme, in Taleez's shape, living in Paris."""
    return {
        "id": candidate_id,
        "dateCreation": DEMO_TALEEZ_CREATED + candidate_id,
        "firstName": first,
        "lastName": last,
        "lang": "fr",
        "unitId": 1,
        "properties": [],
        "location": {"country": "FR", "city": "Paris", "postalCode": "75011"},
        **extra,
    }


def demo_taleez_seed_payload() -> dict[str, Any]:
    """The body of `PUT /_sandbox/taleez/accounts/demo`; Léa Martin has no mail on purpose."""
    return {
        "api_secret": DEMO_TALEEZ_SECRET,
        "candidates": [
            demo_candidate(4411, "Inès", "Dupré", mail="ines@perso.fr", phone="0611223344"),
            demo_candidate(4412, "Karim", "Benali", mail="karim.b@perso.fr", phone="+33622334455"),
            demo_candidate(4413, "Léa", "Martin", phone="0633445566"),
        ],
    }


def demo_taleez_seed() -> TaleezAccountSeed:
    """The demo Taleez account's seed, validated."""
    return TaleezAccountSeed.model_validate(demo_taleez_seed_payload())


def demo_cards_seed_payload() -> dict[str, Any]:
    """The body of `PUT /_sandbox/cards/accounts/demo`: Acme's space before any import.

    Claire Martin already has a Cards account, under her email in other case and in a group of her own, so an
    import links her (and keeps that group); two trainings for the statistics.
    """
    return {
        "api_token": DEMO_CARDS_TOKEN,
        "space_id": DEMO_CARDS_SPACE,
        "groups": [{"id": 1, "name": "Mentors"}],
        "users": [
            {"id": 1, "firstname": "Claire", "lastname": "Martin", "email": "Claire.Martin@ACME.fr", "groups": [1]},
        ],
        "trainings": [
            {"id": 501, "title": "Cybersecurity basics", "public_url": "https://app.cards.example/t/501"},
            {"id": 502, "title": "GDPR essentials", "public_url": "https://app.cards.example/t/502"},
        ],
    }


def demo_cards_seed() -> CardsAccountSeed:
    """The demo Cards space's seed, validated."""
    return CardsAccountSeed.model_validate(demo_cards_seed_payload())
