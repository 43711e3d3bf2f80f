"""Command-line durations: Go-style units or bare seconds."""

from __future__ import annotations

import pytest

from kubeio.durations import parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("60", 60.0),
        ("2.5", 2.5),
        ("90s", 90.0),
        ("5m", 300.0),
        ("1m30s", 90.0),
        ("250ms", 0.25),
        ("1h", 3600.0),
        ("0", 0.0),
        (" 3s ", 3.0),
    ],
)
def test_parses(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "-1", "5 m", "5x", "m", "1m-3s", "nan", "inf", "s5"])
def test_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)
