"""The demo tenant's Lucca account: Acme, three establishments, three departments, three people."""

from typing import Any

from app.sandbox.lucca import LuccaAccountSeed

DEMO_ACCOUNT = "demo"
DEMO_API_KEY = "demo-lucca-api-key"
USER_ROLE_ID = 55


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


def demo_seed() -> LuccaAccountSeed:
    """The demo account's seed, validated."""
    return LuccaAccountSeed.model_validate(demo_seed_payload())
