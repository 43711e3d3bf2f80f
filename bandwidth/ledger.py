"""Headroom arithmetic: pure functions over capacities, usage and requests."""

from __future__ import annotations

from collections.abc import Iterable

from bandwidth.budget import AXES, Axis, Usage
from bandwidth.request import BandwidthRequest


def total_charge(requests: Iterable[BandwidthRequest]) -> Usage:
    total = Usage()
    for request in requests:
        total = total + request.charge()
    return total


def shortfalls(capacity: Usage, used: Usage, request: BandwidthRequest) -> list[Axis]:
    """The axes on which ``request`` does not fit beside ``used``; empty when it fits."""
    charge = request.charge()
    return [axis for axis in AXES if used.on(axis) + charge.on(axis) > capacity.on(axis)]


def overcommitted_axes(capacity: Usage, used: Usage) -> list[Axis]:
    return [axis for axis in AXES if used.on(axis) > capacity.on(axis)]


def copies_that_fit(capacity: Usage, used: Usage, request: BandwidthRequest, limit: int) -> int:
    """How many more pods with ``request`` fit, at most ``limit``: siblings that could follow."""
    charge = request.charge()
    copies = limit
    for axis in AXES:
        need = charge.on(axis)
        if need:
            copies = min(copies, max(0, capacity.on(axis) - used.on(axis)) // need)
    return max(0, copies)


def free_fraction(capacity: Usage, used: Usage) -> float:
    """Mean share of capacity left over the axes that have any: 1.0 empty, 0.0 full."""
    shares = [
        max(0, capacity.on(axis) - used.on(axis)) / capacity.on(axis)
        for axis in AXES
        if capacity.on(axis) > 0
    ]
    return sum(shares) / len(shares) if shares else 0.0
