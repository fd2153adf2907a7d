"""The statistics (a pure function of the events) and the compound field's occurrences Lucca is sent."""

from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest

from app.schemas.cards import StatsFieldCodes
from app.schemas.cards_events import CHAPTER_COMPLETE, QUIZ_COMPLETE
from app.services.cards_stats import (
    LearningEvent,
    Occurrence,
    TrainingStats,
    compound_update,
    percent,
    stats_fingerprint,
    training_statistics,
)

CODES = StatsFieldCodes()
arrivals = iter(range(1, 1_000_000))


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def chapter(training: int, when: str, progress: str, **fields: Any) -> LearningEvent:
    return LearningEvent(
        training_id=training,
        type=CHAPTER_COMPLETE,
        chapter_id=fields.pop("chapter", "c1"),
        occurred_at=at(when),
        sent_at=fields.pop("sent", None),
        arrival=fields.pop("arrival", next(arrivals)),
        progress=Decimal(progress),
        **fields,
    )


def quiz(
    training: int, when: str, progress: str, chapter_id: str, points: str, max_points: str, **fields: Any
) -> LearningEvent:
    return LearningEvent(
        training_id=training,
        type=QUIZ_COMPLETE,
        chapter_id=chapter_id,
        occurred_at=at(when),
        sent_at=fields.pop("sent", None),
        arrival=fields.pop("arrival", next(arrivals)),
        progress=Decimal(progress),
        points=Decimal(points),
        max_points=Decimal(max_points),
    )


def test_a_mix_of_chapters_and_quizzes_gives_the_exact_statistics() -> None:
    events = [
        chapter(77, "2024-01-20 09:00:00", "0.2", chapter="c1"),
        quiz(77, "2024-01-20 09:10:00", "0.4", "q1", "1", "4"),  # retried below: this attempt no longer counts
        chapter(77, "2024-01-21 08:00:00", "0.6", chapter="c3"),
        quiz(77, "2024-01-21 09:00:00", "0.8", "q2", "2", "3"),
        quiz(77, "2024-01-22 10:00:00", "1", "q1", "4", "4"),  # the latest attempt of q1 completes the training
        # Another training, still going: no quiz yet, so no score.
        chapter(12, "2024-01-23 10:00:00", "0.125"),
    ]
    assert training_statistics(reversed(events)) == [
        TrainingStats(12, progress="13%", score=None, last_completion_date=None),
        # (4 + 2) / (4 + 3) = 85.7 %
        TrainingStats(77, progress="100%", score="86%", last_completion_date="2024-01-22"),
    ]


def test_latest_is_by_the_learners_time_then_cards_time_then_arrival() -> None:
    same = "2024-03-01 12:00:00"
    events = [
        quiz(5, same, "0.5", "q1", "1", "2", sent=at("2024-03-01 12:00:02"), arrival=3),
        quiz(5, same, "0.5", "q1", "2", "2", sent=at("2024-03-01 12:00:05"), arrival=1),  # sent last: latest
        chapter(5, "2024-03-01 11:00:00", "0.9", arrival=9),  # arrived last, happened first
    ]
    [stats] = training_statistics(events)
    assert (stats.progress, stats.score) == ("50%", "100%")
    ties = [quiz(5, same, "0.3", "q1", "0", "2", arrival=1), quiz(5, same, "0.4", "q1", "1", "2", arrival=2)]
    assert training_statistics(ties)[0].score == "50%"


def test_the_completion_date_is_the_latest_event_that_brought_progress_to_100_percent() -> None:
    events = [
        chapter(1, "2024-01-01 10:00:00", "0.5"),
        chapter(1, "2024-01-02 10:00:00", "1"),
        chapter(1, "2024-01-03 10:00:00", "1"),  # already complete: not a completion
        chapter(1, "2024-02-01 10:00:00", "0.8"),  # the training grew
        chapter(1, "2024-02-05 23:59:59", "1"),
    ]
    assert training_statistics(events)[0].last_completion_date == "2024-02-05"
    assert training_statistics(events[:4])[0] == TrainingStats(1, "80%", None, "2024-01-02")


def test_percentages_round_halves_up_and_quizzes_without_maximum_do_not_count() -> None:
    assert [percent(Decimal(share)) for share in ("0", "0.005", "0.285", "0.994", "0.995", "1")] == [
        "0%", "1%", "29%", "99%", "100%", "100%",
    ]  # fmt: skip
    events = [
        quiz(3, "2024-01-01 10:00:00", "0.5", "q1", "0", "0"),
        quiz(3, "2024-01-01 11:00:00", "0.6", "q2", "1", "3"),
    ]
    assert training_statistics(events)[0].score == "33%"
    assert training_statistics(events[:1])[0].score is None


GDPR = Occurrence("GDPR basics", "https://cards.example/t/77", "100%", "86%", "2024-01-22")
SECURITY = Occurrence("Security 101", None, "40%", None, None)


def row(row_id: int, title: str, **values: Any) -> dict[str, Any]:
    fields = {"e_title": {"value": title}, **{code: {"value": value} for code, value in values.items()}}
    return {"id": row_id, "value": fields}


def test_an_occurrence_is_updated_in_place_added_when_missing_and_others_are_kept() -> None:
    held = {
        "e_formation": [
            row(11, "Onboarding", e_progress="100%"),  # another training: sent back as it is
            row(12, "GDPR basics", e_link="https://cards.example/t/77", e_progress="40%", e_comment="keep me"),
        ],
        "e_other": {"id": 3, "value": "untouched"},
    }
    rows = compound_update(held, CODES, [GDPR, SECURITY])
    assert rows == [
        row(11, "Onboarding", e_progress="100%"),
        row(
            12, "GDPR basics", e_link="https://cards.example/t/77", e_progress="100%", e_comment="keep me",
            e_score="86%", e_last_completion_date="2024-01-22",
        ),
        {"id": 0, "value": {"e_title": {"value": "Security 101"}, "e_link": {"value": None}, "e_progress": {"value": "40%"},
                            "e_score": {"value": None}, "e_last_completion_date": {"value": None}}},
    ]  # fmt: skip


def test_nothing_is_sent_when_lucca_already_holds_the_statistics() -> None:
    # As Lucca reads them back: a bare value, a date as a midnight datetime, an empty value as "".
    held = {
        "e_formation": [
            {"id": 5, "value": {"e_title": "GDPR basics", "e_link": {"value": "https://cards.example/t/77"},
                                "e_progress": {"value": "100%"}, "e_score": {"value": "86%"},
                                "e_last_completion_date": {"value": "2024-01-22T00:00:00"}}},
            {"id": 6, "value": {"e_title": {"value": "Security 101"}, "e_progress": {"value": "40%"},
                                "e_score": {"value": ""}}},
        ]
    }  # fmt: skip
    assert compound_update(held, CODES, [GDPR, SECURITY]) is None
    assert compound_update({"e_formation": held["e_formation"][:1]}, CODES, [GDPR, SECURITY]) is not None


def test_an_occurrence_is_found_by_its_link_first_then_its_title() -> None:
    renamed = Occurrence("GDPR essentials", GDPR.link, "100%", "86%", "2024-01-22")
    held = {"e_formation": [row(1, "GDPR basics", e_link=GDPR.link), row(2, "GDPR essentials", e_link="https://x")]}
    rows = compound_update(held, CODES, [renamed])
    assert rows is not None and [item["id"] for item in rows] == [1, 2]
    assert rows[0]["value"]["e_title"] == {"value": "GDPR essentials"}
    assert rows[1] == held["e_formation"][1]


def test_custom_field_codes_are_honoured() -> None:
    codes = StatsFieldCodes(compound="e_trainings", title="e_name", progress="e_done")
    rows = compound_update({"e_formation": [row(1, "GDPR basics")]}, codes, [GDPR])
    assert rows is not None and len(rows) == 1 and rows[0]["id"] == 0
    assert rows[0]["value"]["e_name"] == {"value": "GDPR basics"} and rows[0]["value"]["e_done"] == {"value": "100%"}


@pytest.mark.parametrize(
    "other",
    [
        [Occurrence("GDPR basics", GDPR.link, "99%", "86%", "2024-01-22")],
        [GDPR, SECURITY],
    ],
)
def test_the_fingerprint_changes_with_the_statistics_and_the_codes(other: list[Occurrence]) -> None:
    assert stats_fingerprint(CODES, [GDPR]) == stats_fingerprint(StatsFieldCodes(), [GDPR])
    assert stats_fingerprint(CODES, [GDPR]) != stats_fingerprint(CODES, other)
    assert stats_fingerprint(CODES, [GDPR]) != stats_fingerprint(StatsFieldCodes(score="e_points"), [GDPR])
