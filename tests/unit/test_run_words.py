"""How run events word waits, durations and sentences."""

from app.services.execution import duration_in_words, seconds_in_words
from app.services.run_log import sentence


def test_waits_and_durations_in_words() -> None:
    assert [seconds_in_words(s) for s in (0.2, 1.6, 2.0, 5.0, 40.0, 29.73, 300.0, 150.0)] == [
        "0.2 s", "1.6 s", "2 s", "5 s", "40 s", "30 s", "5 min", "150 s",
    ]  # fmt: skip
    assert [duration_in_words(s) for s in (900, 60, 4, 1)] == ["15 minutes", "1 minute", "4 seconds", "1 second"]


def test_events_end_with_a_full_stop() -> None:
    assert sentence("Lucca refused GET /x (HTTP 400): bad field") == "Lucca refused GET /x (HTTP 400): bad field."
    assert sentence("Done.") == "Done."
    assert sentence("Really?") == "Really?"
