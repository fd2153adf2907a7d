"""The people file (contract 10): cells of each type, who is left out and why, CSV quoting, managers on later pages
or no longer listed (reading it from the directory's copy: tests/e2e/test_directory_readers.py)."""

import csv
import io
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from app.clients.lucca import LuccaUser
from app.schemas.elevo import ElevoSettings
from app.services.people_file import PeopleFile, cell, is_checked

TODAY = date(2026, 12, 1)
HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOWO9cY1mOOFYGf+vnwmRbsWaX7BDib2xbOoJkKD9DgF"
SFTP = {"host": "sftp.elevo.example", "username": "acme", "password": "pw", "host_key": HOST_KEY}
TEAMS = {10: "Engineering", 11: "Sales, Europe"}


def settings(**extra: Any) -> ElevoSettings:
    return ElevoSettings.model_validate({"sftp": SFTP, **extra})


def person(user_id: int, first: str, last: str, **extra: Any) -> LuccaUser:
    mail = f"{first}.{last}@acme.fr".lower()
    return LuccaUser.model_validate({"id": user_id, "firstName": first, "lastName": last, "mail": mail, **extra})


def people_file(tmp_path: Path, **extra: Any) -> PeopleFile:
    return PeopleFile(settings(**extra), TODAY, TEAMS, tmp_path)


def written(people: PeopleFile, tmp_path: Path) -> bytes:
    target = tmp_path / "users.csv"
    people.write_csv(target)
    return target.read_bytes()


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, ""),
        ({"id": 4, "value": "shipit"}, "shipit"),
        ({"id": 4, "value": True}, "true"),
        ({"id": 4, "value": False}, "false"),
        ({"id": 4, "value": 12}, "12"),
        ({"id": 4, "value": 12.0}, "12"),
        ({"id": 4, "value": 12.5}, "12.5"),
        ({"id": 4, "value": "2016-09-01T00:00:00"}, "2016-09-01"),
        ({"id": 4, "value": {"id": 84, "name": "Blue", "translation": "Bleu"}}, "Blue"),
        ([{"id": 1, "value": "beer"}, {"id": 2, "value": "free beer"}], "beer; free beer"),
        ({"id": 4, "value": None}, ""),
        ({"id": 4, "value": {"e_title": {"value": "x"}}}, ""),
        (date(2021, 9, 1), "2021-09-01"),
        ("2021-09-01", "2021-09-01"),
        ('Ça, "dit"\nil', 'Ça, "dit"\nil'),
    ],
)
def test_each_kind_of_lucca_value_becomes_one_cell(value: Any, text: str) -> None:
    assert cell(value) == text


@pytest.mark.parametrize(
    ("value", "checked"),
    [(None, False), ({"id": 1, "value": True}, True), ({"id": 1, "value": False}, False), ({"id": 1}, False),
     ({"id": 1, "value": None}, False), (True, True), ({"id": 1, "value": "True"}, True)],
)  # fmt: skip
def test_a_missing_skip_field_means_not_checked(value: Any, checked: bool) -> None:
    assert is_checked(value) is checked


def test_the_file_in_order_with_quoting_and_the_people_left_out(tmp_path: Path) -> None:
    extra = {"shirt": "e_shirt", "birth_date": "e_birth", "level": "e_level", "remote": "e_remote",
             "note": "e_note", "personal_email": "personalEmail"}  # fmt: skip
    people = people_file(tmp_path, extra_columns=extra)
    claire = person(100, "Claire", "Martin", employeeNumber="E001", jobTitle="CTO", departmentId=10,
                    dtContractStart="2019-03-01T00:00:00", personalEmail="claire@perso.fr",
                    extendedData={"e_shirt": {"id": 1, "value": {"id": 3, "name": "L"}},
                                  "e_birth": {"id": 2, "value": "1985-04-12T00:00:00"},
                                  "e_level": {"id": 3, "value": 3}, "e_remote": {"id": 4, "value": True},
                                  "e_note": {"id": 5, "value": 'Says "hi",\nthen leaves'},
                                  "e_skip_elevo_sync": {"id": 6, "value": False}})  # fmt: skip
    people.add_page(
        [
            claire,
            person(101, "Paul", "Durand", dtContractEnd="2024-06-30T00:00:00"),
            person(102, "Jean", "Dupont", managerId=100, departmentId=11, jobTitle="Developer, backend"),
            person(103, "Zoë", "Müller", managerId=104, dtContractEnd="2026-12-01T00:00:00"),  # her last day
            person(105, "Skip", "Me", extendedData={"e_skip_elevo_sync": {"id": 9, "value": True}}),
            LuccaUser.model_validate({"id": 106, "firstName": "No", "lastName": "Mail", "mail": None}),
        ]
    )
    # Zoë's manager, a page later; hers is no longer listed by Lucca (gone from the copy).
    people.add_page([person(104, "Ana", "Gómez", managerId=999)])

    assert (
        written(people, tmp_path)
        == (
            "registration_number,first_name,last_name,email,manager_email,job_title,team_name,arrival_date,shirt,"
            "birth_date,level,remote,note,personal_email\r\n"
            'E001,Claire,Martin,claire.martin@acme.fr,,CTO,Engineering,2019-03-01,L,1985-04-12,3,true,"Says ""hi"",\n'
            'then leaves",claire@perso.fr\r\n'
            ',Jean,Dupont,jean.dupont@acme.fr,claire.martin@acme.fr,"Developer, backend","Sales, Europe",,,,,,,\r\n'
            ",Zoë,Müller,zoë.müller@acme.fr,ana.gómez@acme.fr,,,,,,,,,\r\n"
            ",Ana,Gómez,ana.gómez@acme.fr,,,,,,,,,,\r\n"
        ).encode()
    )
    assert [(p.lucca_id, p.name, p.email, p.reason) for p in people.left_out] == [
        (101, "Paul Durand", "paul.durand@acme.fr", "departed: their contract ended on 2024-06-30"),
        (105, "Skip Me", "skip.me@acme.fr", "skip flag: e_skip_elevo_sync is checked in Lucca"),
        (106, "No Mail", None, "no email: Lucca has no professional e-mail (mail) for them"),
    ]
    assert people.total == 7
    assert [(p.lucca_id, p.email) for p in people.sent] == [
        (100, "claire.martin@acme.fr"), (102, "jean.dupont@acme.fr"), (103, "zoë.müller@acme.fr"),
        (104, "ana.gómez@acme.fr"),
    ]  # fmt: skip
    # The preview's rows are the same, by column; asking twice gives the same answer.
    assert people.rows() == people.rows()
    assert [row["email"] for row in people.rows()] == [p.email for p in people.sent]
    assert people.rows()[0]["note"] == 'Says "hi",\nthen leaves'


def test_the_file_reads_back_as_csv_without_a_byte_order_mark(tmp_path: Path) -> None:
    people = people_file(tmp_path)
    people.add_page([person(1, "Ève", "O'Brien, Jr", jobTitle='Lead "Ops"\r\nteam')])
    content = written(people, tmp_path)
    assert not content.startswith(b"\xef\xbb\xbf")
    header, row = csv.reader(io.StringIO(content.decode("utf-8"), newline=""))
    assert header[:4] == ["registration_number", "first_name", "last_name", "email"]
    assert row[2] == "O'Brien, Jr" and row[5] == 'Lead "Ops"\r\nteam'


def test_people_sharing_an_email_are_left_out_both(tmp_path: Path) -> None:
    people = people_file(tmp_path)
    people.add_page([person(1, "Jean", "Dupont"), person(2, "Ana", "Lopez")])
    people.add_page([person(3, "Jean", "Dupont", mail="JEAN.DUPONT@acme.fr", managerId=2)])
    assert written(people, tmp_path).decode().splitlines()[1:] == [",Ana,Lopez,ana.lopez@acme.fr,,,,"]
    assert [(p.lucca_id, p.reason) for p in people.left_out] == [
        (1, "duplicate email: 2 people have jean.dupont@acme.fr in Lucca (ignoring case)"),
        (3, "duplicate email: 2 people have JEAN.DUPONT@acme.fr in Lucca (ignoring case)"),
    ]


def test_a_custom_skip_field_and_a_missing_one(tmp_path: Path) -> None:
    people = people_file(tmp_path, skip_field_code="e_no_elevo")
    people.add_page(
        [
            person(1, "A", "One", extendedData={"e_no_elevo": {"id": 1, "value": True}}),
            person(2, "B", "Two", extendedData={"e_skip_elevo_sync": {"id": 2, "value": True}}),  # not the field
            person(3, "C", "Three"),  # no extended data at all
        ]
    )
    assert written(people, tmp_path).count(b"\r\n") == 3
    assert [p.lucca_id for p in people.sent] == [2, 3]
