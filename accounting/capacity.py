"""A node's bandwidth capacity: its own labels or annotations, else the controller's defaults.

Each of the four axes is read on its own, annotation first, then label, then default::

    bandwidth.vaclab.org/network-ul-mbps   bandwidth.vaclab.org/network-dl-mbps
    bandwidth.vaclab.org/local-ul-mbps     bandwidth.vaclab.org/local-dl-mbps

Values read like pod annotations (``bandwidth.quantity.parse_mbps``): a bare number is Mbps,
a quantity with a unit is bits per second (``10G`` is 10000 Mbps). A value that does not parse
is an error, never a silent default: a capacity too large would promise bandwidth the node
does not have.

The capacity is applied only when the controller creates the node's Bandwidth object; after
that ``spec.capacity`` belongs to the users who edit it (see ``accounting.controller``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from bandwidth.budget import Datapath, Direction, LinkBudget, Usage
from bandwidth.quantity import BandwidthValueError, parse_mbps

KEY_PREFIX = "bandwidth.vaclab.org/"

SEED_DEFAULT_CAPACITY = Usage(local=LinkBudget(20_000, 20_000), network=LinkBudget(1_000, 1_000))
"""Defaults when neither flags nor the node say otherwise: a virtual switch of 20 Gbps and a
1 Gbps NIC, each way."""

_SHORT = {Direction.UPLINK: "ul", Direction.DOWNLINK: "dl"}


def capacity_key(datapath: Datapath, direction: Direction) -> str:
    """``bandwidth.vaclab.org/network-ul-mbps`` and its three siblings."""
    return f"{KEY_PREFIX}{datapath.value}-{_SHORT[direction]}-mbps"


CAPACITY_KEYS: tuple[str, ...] = tuple(
    capacity_key(datapath, direction) for datapath in Datapath for direction in Direction
)


class CapacityError(ValueError):
    """A capacity label or annotation that cannot be read; names where it came from."""

    def __init__(self, node: str, source: str, key: str, value: str, reason: str) -> None:
        super().__init__(f"node {node}: {source} {key}={value!r} is invalid: {reason}")
        self.node = node
        self.source = source
        self.key = key
        self.value = value
        self.reason = reason


@dataclass(frozen=True, slots=True)
class NodeCapacity:
    """The capacity to create a node's Bandwidth with, and which axes the node itself set."""

    capacity: Usage
    from_node: tuple[str, ...]  # the keys the node carried


def _axis_mbps(
    node: str,
    key: str,
    labels: Mapping[str, str],
    annotations: Mapping[str, str],
    default: int,
) -> tuple[int, bool]:
    for source, values in (("annotation", annotations), ("label", labels)):
        if key in values:
            value = values[key]
            try:
                return parse_mbps(value), True
            except BandwidthValueError as error:
                raise CapacityError(node, source, key, value, error.reason) from error
    return default, False


def node_capacity(
    node: str,
    labels: Mapping[str, str] | None,
    annotations: Mapping[str, str] | None,
    defaults: Usage = SEED_DEFAULT_CAPACITY,
) -> NodeCapacity:
    """The node's capacity; raises ``CapacityError`` for the first value that does not parse."""
    labels = labels or {}
    annotations = annotations or {}
    links: dict[Datapath, dict[Direction, int]] = {}
    from_node: list[str] = []
    for datapath in Datapath:
        default_link = defaults.local if datapath is Datapath.LOCAL else defaults.network
        for direction in Direction:
            key = capacity_key(datapath, direction)
            mbps, found = _axis_mbps(node, key, labels, annotations, default_link.along(direction))
            links.setdefault(datapath, {})[direction] = mbps
            if found:
                from_node.append(key)

    def link(datapath: Datapath) -> LinkBudget:
        return LinkBudget(links[datapath][Direction.UPLINK], links[datapath][Direction.DOWNLINK])

    return NodeCapacity(
        Usage(local=link(Datapath.LOCAL), network=link(Datapath.NETWORK)), tuple(from_node)
    )
