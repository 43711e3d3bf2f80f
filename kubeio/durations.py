"""Durations written as Kubernetes components take them on the command line: ``90s``, ``5m``,
``1m30s``, ``250ms``, ``1h``; a bare number is seconds."""

from __future__ import annotations

import re

_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_SECONDS_PER_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """Seconds for ``text``; raises ``ValueError`` for anything else (negative included)."""
    value = text.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        if seconds < 0 or seconds != seconds or seconds == float("inf"):
            raise ValueError(f"{text!r}: expected a duration >= 0 such as 90s, 5m or 1m30s")
        return seconds
    position = 0
    total = 0.0
    for match in _PART.finditer(value):
        if match.start() != position:
            break
        total += float(match[1]) * _SECONDS_PER_UNIT[match[2]]
        position = match.end()
    if not value or position != len(value):
        raise ValueError(f"{text!r}: expected a duration such as 90s, 5m or 1m30s")
    return total
