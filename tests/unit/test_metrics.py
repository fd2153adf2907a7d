"""/metrics text: exact values, and every family from the start."""

from app.metrics import HELP, format_value, render_counters


def test_values_are_exact() -> None:
    assert format_value(1234567.0) == "1234567"
    assert format_value(10_000_000_000.0) == "10000000000"
    assert format_value(0.0) == "0"
    assert format_value(12345678.25) == "12345678.25"
    assert format_value(0.1 + 0.2) == "0.30000000000000004"
    assert float(format_value(1 / 3)) == 1 / 3


def test_every_family_is_there_before_anything_is_counted() -> None:
    lines = render_counters({})
    for name, words in HELP.items():
        index = lines.index(f"# HELP {name} {words}")
        assert lines[index + 1 : index + 3] == [f"# TYPE {name} counter", f"{name} 0"]


def test_counted_samples_replace_the_zero() -> None:
    lines = render_counters(
        {
            'partner_calls_total|partner="lucca",status="200"': 1234567.0,
            'rate_limit_wait_seconds_total|partner="lucca"': 1500000.125,
            "custom_total|": 2.0,
        }
    )
    assert 'partner_calls_total{partner="lucca",status="200"} 1234567' in lines
    assert "partner_calls_total 0" not in lines
    assert 'rate_limit_wait_seconds_total{partner="lucca"} 1500000.125' in lines
    assert "webhook_deliveries_total 0" in lines
    assert lines[-3:] == ["# HELP custom_total custom_total", "# TYPE custom_total counter", "custom_total 2"]
