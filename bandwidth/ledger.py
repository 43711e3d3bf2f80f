"""Headroom arithmetic: pure functions over capacities, usage and requests."""

from __future__ import annotations

from bandwidth.budget import AXES, Axis, Usage
from bandwidth.request import BandwidthRequest


def shortfalls(capacity: Usage, used: Usage, request: BandwidthRequest) -> list[Axis]:
    """The axes on which ``request`` does not fit beside ``used``; empty when it fits."""
    charge = request.charge()
    return [axis for axis in AXES if used.on(axis) + charge.on(axis) > capacity.on(axis)]


def overcommitted_axes(capacity: Usage, used: Usage) -> list[Axis]:
    return [axis for axis in AXES if used.on(axis) > capacity.on(axis)]
