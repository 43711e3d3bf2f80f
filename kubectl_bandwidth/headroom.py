"""What each node has, has promised and has left: the rows of ``kubectl bandwidth status``.

Pure. "Charged" is what the scheduler's BandwidthFit filter subtracts from capacity: the
ledger (``spec.reservations``) plus live pods bound to the node whose bandwidth no ledger entry
holds (placed by another scheduler: *observed*), plus what DRA claims hold when the accounting
controller counts them (``status.draUsed``, shown apart as ``dra``). Free is capacity minus
charged, per axis, and is negative on an oversubscribed axis.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bandwidth.budget import Axis, Datapath, Direction, Usage
from kubectl_bandwidth.snapshot import Snapshot
from kubeio.labels import LabelSelector
from scheduler.nodeinfo import NodeInfo

NODE_READY = "Ready"
NODE_NOT_READY = "NotReady"
NODE_CORDONED = "SchedulingDisabled"
NODE_MISSING = "NoNode"


@dataclass(frozen=True, slots=True)
class NodeHeadroom:
    name: str
    node_condition: str
    labels: Mapping[str, str] = field(default_factory=dict)
    capacity: Usage | None = None
    charged: Usage = Usage()
    in_ledger: Usage = Usage()
    reservations: int = 0
    observed: int = 0
    pods: int = 0
    state: str = ""
    problem: str = ""
    dra: Usage | None = None
    """Held by DRA claims (part of ``charged``); None when no DRA sharing is reported."""

    @property
    def free(self) -> Usage | None:
        return None if self.capacity is None else self.capacity - self.charged


def _node_condition(info: NodeInfo) -> str:
    if info.facts is None:
        return NODE_MISSING
    if not info.facts.ready:
        return NODE_NOT_READY
    return NODE_CORDONED if info.facts.unschedulable else NODE_READY


def headroom_of(info: NodeInfo, bandwidth_object: Mapping[str, Any] | None) -> NodeHeadroom:
    ledger = info.bandwidth
    charged = info.charged_requests()
    held = set(ledger.reservations) if ledger is not None else set()
    status = (bandwidth_object or {}).get("status") or {}
    problem = info.bandwidth_problem or ("; ".join(ledger.problems) if ledger else "")
    if ledger is None and not problem:
        problem = "no Bandwidth object"
    return NodeHeadroom(
        name=info.name,
        node_condition=_node_condition(info),
        labels=dict(info.facts.labels) if info.facts else {},
        capacity=info.capacity,
        charged=info.bandwidth_used,
        in_ledger=ledger.reserved() if ledger is not None else Usage(),
        reservations=len(held),
        observed=len(set(charged) - held),
        pods=len(info.pods),
        state=str(status.get("state") or ""),
        problem=problem,
        dra=info.dra.usage if "draUsed" in status else None,
    )


def node_headroom(snapshot: Snapshot) -> list[NodeHeadroom]:
    """One row per node known from a Node or a Bandwidth object, by name."""
    rows = []
    for name, info in sorted(snapshot.state.nodes.items()):
        if info.facts is None and info.bandwidth is None and not info.bandwidth_problem:
            continue
        rows.append(headroom_of(info, snapshot.bandwidth_objects.get(name)))
    return rows


def select(rows: Iterable[NodeHeadroom], selector: LabelSelector) -> list[NodeHeadroom]:
    """Rows whose node labels match; a Bandwidth object without a Node has no labels."""
    if not selector.requirements:
        return list(rows)
    return [
        row for row in rows if row.node_condition != NODE_MISSING and selector.matches(row.labels)
    ]


def _free_on(*axes: Axis) -> Callable[[NodeHeadroom], float]:
    """The least free Mbps over ``axes``: the direction that runs out first."""

    def key(row: NodeHeadroom) -> float:
        free = row.free
        return float("-inf") if free is None else float(min(free.on(axis) for axis in axes))

    return key


_NETWORK_UL = Axis(Datapath.NETWORK, Direction.UPLINK)
_NETWORK_DL = Axis(Datapath.NETWORK, Direction.DOWNLINK)
_LOCAL_UL = Axis(Datapath.LOCAL, Direction.UPLINK)
_LOCAL_DL = Axis(Datapath.LOCAL, Direction.DOWNLINK)

# Every key but ``name`` sorts the largest value first: the most room, the most pods.
SORT_KEYS: dict[str, Callable[[NodeHeadroom], float]] = {
    "network-free": _free_on(_NETWORK_UL, _NETWORK_DL),
    "local-free": _free_on(_LOCAL_UL, _LOCAL_DL),
    "network-ul-free": _free_on(_NETWORK_UL),
    "network-dl-free": _free_on(_NETWORK_DL),
    "local-ul-free": _free_on(_LOCAL_UL),
    "local-dl-free": _free_on(_LOCAL_DL),
    "pods": lambda row: float(row.pods),
    "reservations": lambda row: float(row.reservations),
}
SORT_CHOICES = ("name", *SORT_KEYS)


def sort_rows(rows: Iterable[NodeHeadroom], sort_by: str) -> list[NodeHeadroom]:
    """Ordered by ``sort_by`` (one of ``SORT_CHOICES``), ties by node name."""
    if sort_by == "name":
        return sorted(rows, key=lambda row: row.name)
    key = SORT_KEYS[sort_by]
    return sorted(rows, key=lambda row: (-key(row), row.name))
