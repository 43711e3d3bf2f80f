"""One node as the scheduler sees it.

Bandwidth used on a node is counted once per pod UID over three sources, so no megabit is
counted twice and none is missed while writes are in flight::

    reserved  — entries of the node's Bandwidth CR (the ledger)
    assumed   — decisions made here whose reservation or binding is still in flight
    observed  — live pods bound to the node with bandwidth annotations (other schedulers,
                or ours before the CR watch caught up)

An assumed pod is Initial → Assumed (decision made) → Added (seen bound through the pod watch)
or Forgotten (its reservation or binding failed); see ``cluster.ClusterState``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bandwidth.budget import AxisVector, Usage
from bandwidth.model import NodeBandwidth
from bandwidth.request import BandwidthRequest
from scheduler.podfacts import PodFacts, WorkloadKey
from scheduler.resources import ResourceVector, add_into, vector


@dataclass(frozen=True, slots=True)
class NodeFacts:
    name: str
    labels: Mapping[str, str]
    taints: tuple[Mapping[str, Any], ...]
    unschedulable: bool
    ready: bool
    allocatable: ResourceVector

    @classmethod
    def read(cls, node: Mapping[str, Any]) -> NodeFacts:
        metadata = node.get("metadata") or {}
        spec = node.get("spec") or {}
        status = node.get("status") or {}
        ready = any(
            c.get("type") == "Ready" and c.get("status") == "True"
            for c in status.get("conditions") or []
        )
        try:
            allocatable = vector(status.get("allocatable") or status.get("capacity"))
        except (ValueError, ArithmeticError):
            allocatable = {}
        return cls(
            name=str(metadata.get("name", "")),
            labels=dict(metadata.get("labels") or {}),
            taints=tuple(spec.get("taints") or ()),
            unschedulable=bool(spec.get("unschedulable")),
            ready=ready,
            allocatable=allocatable,
        )


@dataclass(slots=True)
class NodeInfo:
    name: str
    facts: NodeFacts | None = None
    bandwidth: NodeBandwidth | None = None
    bandwidth_problem: str = ""
    pods: dict[str, PodFacts] = field(default_factory=dict)
    assumed: dict[str, PodFacts] = field(default_factory=dict)
    requested: ResourceVector = field(default_factory=dict)
    siblings: dict[WorkloadKey, int] = field(default_factory=dict)
    bandwidth_used: Usage = Usage()
    capacity_vector: AxisVector | None = None
    free_bandwidth: AxisVector | None = None
    """Capacity minus everything charged, per axis (``AXES`` order); None without a ledger."""

    @property
    def capacity(self) -> Usage | None:
        return self.bandwidth.capacity if self.bandwidth is not None else None

    def add_pod(self, pod: PodFacts, workload: WorkloadKey | None) -> None:
        self.pods[pod.uid] = pod
        self._account(pod, workload, +1)

    def remove_pod(self, uid: str, workload: WorkloadKey | None) -> None:
        pod = self.pods.pop(uid, None)
        if pod is not None:
            self._account(pod, workload, -1)

    def assume(self, pod: PodFacts, workload: WorkloadKey | None) -> None:
        self.assumed[pod.uid] = pod
        self._account(pod, workload, +1)

    def forget(self, uid: str, workload: WorkloadKey | None) -> None:
        pod = self.assumed.pop(uid, None)
        if pod is not None:
            self._account(pod, workload, -1)

    def _account(self, pod: PodFacts, workload: WorkloadKey | None, sign: int) -> None:
        add_into(self.requested, pod.requests, sign)
        if workload is not None:
            count = self.siblings.get(workload, 0) + sign
            if count:
                self.siblings[workload] = count
            else:
                self.siblings.pop(workload, None)
        if not pod.bandwidth.is_zero():
            self.recount_bandwidth()

    def set_bandwidth(self, bandwidth: NodeBandwidth | None, problem: str = "") -> None:
        self.bandwidth = bandwidth
        self.bandwidth_problem = problem
        self.recount_bandwidth()

    def charged_requests(self) -> dict[str, BandwidthRequest]:
        """Bandwidth held on this node by pod UID: the ledger first, then in-flight, then seen."""
        charged: dict[str, BandwidthRequest] = {}
        for uid, pod in self.pods.items():
            if not pod.bandwidth.is_zero():
                charged[uid] = pod.bandwidth
        for uid, pod in self.assumed.items():
            if not pod.bandwidth.is_zero():
                charged[uid] = pod.bandwidth
        if self.bandwidth is not None:
            for uid, reservation in self.bandwidth.reservations.items():
                charged[uid] = reservation.request
        return charged

    def holds(self, uid: str) -> bool:
        """Whether this node's ledger already has a reservation for the pod."""
        return self.bandwidth is not None and uid in self.bandwidth.reservations

    def recount_bandwidth(self) -> None:
        total = Usage()
        for request in self.charged_requests().values():
            total = total + request.charge()
        self.bandwidth_used = total
        capacity = self.capacity
        self.capacity_vector = None if capacity is None else capacity.as_tuple()
        self.free_bandwidth = (
            None
            if self.capacity_vector is None
            else tuple_difference(self.capacity_vector, total.as_tuple())
        )


def tuple_difference(left: AxisVector, right: AxisVector) -> AxisVector:
    return (left[0] - right[0], left[1] - right[1], left[2] - right[2], left[3] - right[3])
