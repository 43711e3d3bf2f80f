"""Link budgets: uplink and downlink Mbps on the two datapaths of a node.

A node has a **local** datapath (the virtual switch every pod's traffic crosses) and a
**network** datapath (the physical NIC, for traffic that leaves the node). Each has an uplink
(egress) and a downlink (ingress) direction: four axes in all.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Datapath(enum.Enum):
    LOCAL = "local"
    NETWORK = "network"


class Direction(enum.Enum):
    UPLINK = "uplink"
    DOWNLINK = "downlink"


@dataclass(frozen=True, slots=True)
class Axis:
    datapath: Datapath
    direction: Direction

    def __str__(self) -> str:
        return f"{self.datapath.value} {self.direction.value}"


AXES: tuple[Axis, ...] = tuple(Axis(p, d) for p in Datapath for d in Direction)

AxisVector = tuple[int, int, int, int]
"""Mbps on the four axes in ``AXES`` order: local up, local down, network up, network down."""


@dataclass(frozen=True, slots=True)
class LinkBudget:
    """Mbps in each direction of one datapath."""

    ul_mbps: int = 0
    dl_mbps: int = 0

    def __add__(self, other: LinkBudget) -> LinkBudget:
        return LinkBudget(self.ul_mbps + other.ul_mbps, self.dl_mbps + other.dl_mbps)

    def __sub__(self, other: LinkBudget) -> LinkBudget:
        return LinkBudget(self.ul_mbps - other.ul_mbps, self.dl_mbps - other.dl_mbps)

    def along(self, direction: Direction) -> int:
        return self.ul_mbps if direction is Direction.UPLINK else self.dl_mbps

    def is_zero(self) -> bool:
        return self.ul_mbps == 0 and self.dl_mbps == 0


@dataclass(frozen=True, slots=True)
class Usage:
    """Mbps on both datapaths: a capacity, an amount used, or what remains."""

    local: LinkBudget = LinkBudget()
    network: LinkBudget = LinkBudget()

    def __add__(self, other: Usage) -> Usage:
        return Usage(self.local + other.local, self.network + other.network)

    def __sub__(self, other: Usage) -> Usage:
        return Usage(self.local - other.local, self.network - other.network)

    def on(self, axis: Axis) -> int:
        budget = self.local if axis.datapath is Datapath.LOCAL else self.network
        return budget.along(axis.direction)

    def as_tuple(self) -> AxisVector:
        """The four axes in ``AXES`` order, for hot loops that cannot afford objects."""
        return (self.local.ul_mbps, self.local.dl_mbps, self.network.ul_mbps, self.network.dl_mbps)

    def is_zero(self) -> bool:
        return self.local.is_zero() and self.network.is_zero()


ZERO = Usage()
