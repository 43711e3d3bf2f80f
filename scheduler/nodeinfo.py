"""One node as the scheduler sees it.

Bandwidth used on a node is counted once per pod UID over three sources, so no megabit is
counted twice and none is missed while writes are in flight::

    reserved  — entries of the node's Bandwidth CR (the ledger)
    assumed   — decisions made here whose reservation or binding is still in flight
    observed  — live pods bound to the node with bandwidth annotations (other schedulers,
                or ours before the CR watch caught up)

plus a fourth, per claim rather than per pod, when DRA sharing is on (``--dra-driver``)::

    dra       — what kube-scheduler gave to allocated ResourceClaims on the node's devices
                (``bandwidth.dra``); the pods those claims are reserved for are not counted
                again as observed, though they may carry annotations for traffic shaping

An assumed pod is Initial → Assumed (decision made) → Added (seen bound through the pod watch)
or Forgotten (its reservation or binding failed); see ``cluster.ClusterState``.

Host ports are counted the same way, bound and assumed pods alike, and every pod added or
assumed here is also entered in the cluster's ``PodIndex`` (when the node has one), so the
next decision sees an in-flight pod's ports, labels and anti-affinity at once.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from bandwidth.budget import AxisVector, Usage
from bandwidth.dra import NO_HOLDING, DraHolding
from bandwidth.model import MAX_RESERVATIONS, NodeBandwidth
from bandwidth.request import BandwidthRequest
from scheduler.podfacts import PodFacts, WorkloadKey
from scheduler.podindex import PodIndex
from scheduler.podterms import ANY_IP, HostPort
from scheduler.resources import ResourceVector, add_into, vector

if TYPE_CHECKING:
    from scheduler.nodetable import NodeTable


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
    dra: DraHolding = NO_HOLDING
    bandwidth_used: Usage = Usage()
    capacity_vector: AxisVector | None = None
    free_bandwidth: AxisVector | None = None
    """Capacity minus everything charged, per axis (``AXES`` order); None without a ledger."""
    index: PodIndex | None = None
    used_ports: Counter[tuple[str, str, int]] = field(default_factory=Counter)
    """Host ports in use by (host IP, protocol, port); ``0.0.0.0`` for every address."""
    ports_on_any_ip: Counter[tuple[str, int]] = field(default_factory=Counter)
    ledger_limit: int = MAX_RESERVATIONS
    """Reservations the node's Bandwidth object can hold: the CRD's ``maxItems``, or fewer
    once the apiserver refused a longer ledger as too large."""
    table: NodeTable | None = None
    """The cluster's arrays, where this node's numbers are row ``row`` (``scheduler.nodetable``);
    None in a what-if copy and in nodes built outside a ``ClusterState``."""
    row: int = -1

    @property
    def capacity(self) -> Usage | None:
        return self.bandwidth.capacity if self.bandwidth is not None else None

    def snapshot(self) -> NodeInfo:
        """A copy to change in a what-if (a preemption's dry run, pods nominated here): out
        of the pod index, so that changing it changes nothing else."""
        return replace(
            self,
            pods=dict(self.pods),
            assumed=dict(self.assumed),
            requested=dict(self.requested),
            siblings=dict(self.siblings),
            index=None,
            table=None,
            row=-1,
            used_ports=Counter(self.used_ports),
            ports_on_any_ip=Counter(self.ports_on_any_ip),
        )

    def set_facts(self, facts: NodeFacts | None) -> None:
        self.facts = facts
        if self.table is not None:
            self.table.facts_changed(self)

    def set_ledger_limit(self, limit: int) -> None:
        self.ledger_limit = limit
        if self.table is not None:
            self.table.bandwidth_changed(self)

    def add_pod(self, pod: PodFacts, workload: WorkloadKey | None) -> None:
        before = self._charge_of(pod.uid)
        self.pods[pod.uid] = pod
        self._account(pod, workload, +1, before)

    def remove_pod(self, uid: str, workload: WorkloadKey | None) -> None:
        before = self._charge_of(uid)
        pod = self.pods.pop(uid, None)
        if pod is not None:
            self._account(pod, workload, -1, before)

    def assume(self, pod: PodFacts, workload: WorkloadKey | None) -> None:
        before = self._charge_of(pod.uid)
        self.assumed[pod.uid] = pod
        self._account(pod, workload, +1, before)

    def forget(self, uid: str, workload: WorkloadKey | None) -> None:
        before = self._charge_of(uid)
        pod = self.assumed.pop(uid, None)
        if pod is not None:
            self._account(pod, workload, -1, before)

    def port_conflicts(self, port: HostPort) -> bool:
        """Whether a pod asking for ``port`` would clash with a port in use here: a port on
        every address clashes with that protocol and port on any address, and the other way
        round."""
        if port.ip == ANY_IP:
            return self.ports_on_any_ip[(port.protocol, port.port)] > 0
        return (
            self.used_ports[(port.ip, port.protocol, port.port)] > 0
            or self.used_ports[(ANY_IP, port.protocol, port.port)] > 0
        )

    def _account(
        self, pod: PodFacts, workload: WorkloadKey | None, sign: int, before: Usage | None
    ) -> None:
        if self.index is not None:
            if sign > 0:
                self.index.add(pod, self)
            else:
                self.index.remove(pod.uid, self)
        for port in pod.host_ports:
            _count(self.used_ports, (port.ip, port.protocol, port.port), sign)
            _count(self.ports_on_any_ip, (port.protocol, port.port), sign)
        add_into(self.requested, pod.requests, sign)
        if workload is not None:
            count = self.siblings.get(workload, 0) + sign
            if count:
                self.siblings[workload] = count
            else:
                self.siblings.pop(workload, None)
        if self.table is not None:
            self.table.requested_changed(self, pod.requests)
            if workload is not None:
                self.table.siblings_changed(self, workload)
        self._recharge(before, self._charge_of(pod.uid))

    def set_bandwidth(self, bandwidth: NodeBandwidth | None, problem: str = "") -> None:
        if self.table is not None:
            self.table.reservations_changed(
                self,
                self.bandwidth.reservations if self.bandwidth is not None else (),
                bandwidth.reservations if bandwidth is not None else (),
            )
        self.bandwidth = bandwidth
        self.bandwidth_problem = problem
        self.recount_bandwidth()

    def set_dra(self, holding: DraHolding) -> None:
        self.dra = holding
        self.recount_bandwidth()

    def charged_requests(self) -> dict[str, BandwidthRequest]:
        """Bandwidth held on this node by pod UID: the ledger first, then in-flight, then seen
        (but for pods a DRA claim holds bandwidth for: ``dra`` counts them)."""
        charged: dict[str, BandwidthRequest] = {}
        for uid, pod in self.pods.items():
            if not pod.bandwidth.is_zero() and uid not in self.dra.pod_uids:
                charged[uid] = pod.bandwidth
        for uid, pod in self.assumed.items():
            if not pod.bandwidth.is_zero():
                charged[uid] = pod.bandwidth
        if self.bandwidth is not None:
            for uid, reservation in self.bandwidth.reservations.items():
                charged[uid] = reservation.request
        return charged

    def ledger_full(self) -> bool:
        """Whether the ledger can take no new entry."""
        return self.bandwidth is not None and len(self.bandwidth.reservations) >= self.ledger_limit

    def holds(self, uid: str) -> bool:
        """Whether this node's ledger already has a reservation for the pod."""
        return self.bandwidth is not None and uid in self.bandwidth.reservations

    def _charge_of(self, uid: str) -> Usage | None:
        """What ``charged_requests`` charges for one pod UID, if anything."""
        if self.bandwidth is not None:
            reservation = self.bandwidth.reservations.get(uid)
            if reservation is not None:
                return reservation.request.charge()
        pod = self.assumed.get(uid)
        if pod is not None and not pod.bandwidth.is_zero():
            return pod.bandwidth.charge()
        pod = self.pods.get(uid)
        if pod is not None and not pod.bandwidth.is_zero() and uid not in self.dra.pod_uids:
            return pod.bandwidth.charge()
        return None

    def _recharge(self, before: Usage | None, after: Usage | None) -> None:
        """``recount_bandwidth`` after one pod's charge went from ``before`` to ``after``,
        without going over every pod: the total is a sum of whole Mbps, in any order."""
        if before == after:
            return
        total = self.bandwidth_used
        if before is not None:
            total = total - before
        if after is not None:
            total = total + after
        self._set_used(total)

    def recount_bandwidth(self) -> None:
        total = self.dra.usage
        for request in self.charged_requests().values():
            total = total + request.charge()
        self._set_used(total)

    def _set_used(self, total: Usage) -> None:
        self.bandwidth_used = total
        capacity = self.capacity
        self.capacity_vector = None if capacity is None else capacity.as_tuple()
        self.free_bandwidth = (
            None
            if self.capacity_vector is None
            else tuple_difference(self.capacity_vector, total.as_tuple())
        )
        if self.table is not None:
            self.table.bandwidth_changed(self)


def _count(counter: Counter[Any], key: Any, sign: int) -> None:
    count = counter[key] + sign
    if count > 0:
        counter[key] = count
    else:
        del counter[key]


def tuple_difference(left: AxisVector, right: AxisVector) -> AxisVector:
    return (left[0] - right[0], left[1] - right[1], left[2] - right[2], left[3] - right[3])
