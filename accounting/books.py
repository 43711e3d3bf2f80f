"""The books of one node: who is charged, which reservations are stale, what is left.

Pure: plain values in, plain values out, no client. ``keep_books`` is called with the node's
Bandwidth object, the pods bound to the node, and the pods its reservations name; the
controller writes what it returns.

Life of a reservation, as the books see it::

    written by the scheduler ──► pod unbound ──(grace passes)──────────► released: NeverBound
                                   │
                                   ├─ bound to this node ──► charged ──► pod Succeeded/Failed
                                   │                            │        or deleted: released
                                   └─ bound to another node ────┴──────► released: BoundElsewhere

A pod bound to the node, not terminal, carrying bandwidth annotations but holding no
reservation here was placed by another scheduler: it is charged too (source ``Observed``),
unless a DRA claim holds its bandwidth: with DRA sharing on, what allocated claims hold on the
node (``bandwidth.dra``) is charged as a whole, and the pods they are reserved for are not
charged a second time for the annotations that shape their traffic.
Its annotations that cannot be parsed are reported in ``unhonoured`` and charge nothing.

A Bandwidth the controller creates for a node that already runs such pods starts with a
reservation for each of them (``rebuilt_reservations``): a Bandwidth deleted by hand comes back
with its ledger instead of an empty one.

Two reasons depend on the *absence* of a fact the watch cache may not have delivered yet (a
pod just created, a binding just made): ``PodDeleted`` and ``NeverBound``. Their releases say
``needs_fresh_pod``; the controller re-reads those pods (a ``NeverBound`` one through the fence
of ``kubeio.fencing``, which stops any binding still on its way) and calls ``keep_books``
again before it writes.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from accounting.pods import ReplicaSetOwner, Workload, workload_of
from bandwidth.budget import Axis, LinkBudget, Usage
from bandwidth.dra import DraHolding
from bandwidth.ledger import overcommitted_axes
from bandwidth.model import JSON, NodeBandwidth, Reservation, later
from bandwidth.request import BandwidthRequest, InvalidBandwidthAnnotation
from kubeio.objects import SUCCEEDED
from kubeio.pods import PodBasics

SOURCE_SCHEDULER = "Scheduler"
SOURCE_OBSERVED = "Observed"


class ReleaseReason(enum.Enum):
    POD_DELETED = "PodDeleted"
    POD_SUCCEEDED = "PodSucceeded"
    POD_FAILED = "PodFailed"
    NEVER_BOUND = "NeverBound"
    BOUND_ELSEWHERE = "BoundElsewhere"


_NEEDS_FRESH_POD = frozenset({ReleaseReason.POD_DELETED, ReleaseReason.NEVER_BOUND})

# A reservedAt this far ahead of the controller's clock is taken at its word (a scheduler's
# clock may run a little ahead); beyond it, as a hand edit that would hold bandwidth for ever,
# the grace counts from when the controller first saw the reservation.
FUTURE_TOLERANCE = timedelta(minutes=5)


def dated(reservation: Reservation, now: datetime) -> bool:
    """Whether the reservation's own ``reservedAt`` starts its grace period; otherwise the
    controller counts from when it first saw the reservation (``first_seen``)."""
    moment = reservation.reserved_at
    return moment is not None and moment <= later(now, FUTURE_TOLERANCE)


@dataclass(frozen=True, slots=True)
class Release:
    """A reservation to remove from the node's ledger, and why, in words for an Event."""

    reservation: Reservation
    reason: ReleaseReason
    detail: str

    @property
    def needs_fresh_pod(self) -> bool:
        return self.reason in _NEEDS_FRESH_POD

    @property
    def pod(self) -> str:
        return f"{self.reservation.pod_namespace}/{self.reservation.pod_name}"


@dataclass(frozen=True, slots=True)
class Charge:
    """One pod charged on the node: one entry of ``status.reservations``."""

    pod_uid: str
    pod_name: str
    pod_namespace: str
    ul_mbps: int
    dl_mbps: int
    link_local: bool
    source: str
    pod_ip: str = ""
    phase: str = ""
    workload: Workload | None = None

    def usage(self) -> Usage:
        return BandwidthRequest(self.ul_mbps, self.dl_mbps, self.link_local).charge()

    def to_json(self) -> JSON:
        entry: JSON = {
            "podName": self.pod_name,
            "podNamespace": self.pod_namespace,
            "podUID": self.pod_uid,
            "linkLocal": self.link_local,
            "ulMbps": self.ul_mbps,
            "dlMbps": self.dl_mbps,
            "source": self.source,
        }
        if self.pod_ip:
            entry["podIP"] = self.pod_ip
        if self.phase:
            entry["phase"] = self.phase
        if self.workload is not None:
            entry["workload"] = self.workload.to_json()
        return entry


@dataclass(frozen=True, slots=True)
class UnhonouredPod:
    """A pod on the node whose bandwidth annotations cannot be read: it is charged nothing."""

    pod: PodBasics
    error: InvalidBandwidthAnnotation


@dataclass(frozen=True, slots=True)
class Books:
    node: str
    capacity: Usage
    charges: tuple[Charge, ...]
    releases: tuple[Release, ...]
    unhonoured: tuple[UnhonouredPod, ...]
    review_at: datetime | None
    """When the earliest unbound reservation's grace ends: reconcile again then."""
    dra: DraHolding | None = None
    """What DRA claims hold on the node; None when DRA sharing is off."""
    _used: Usage | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def used(self) -> Usage:
        """Summed once: the status, the metrics and the oversubscription check all ask."""
        if self._used is None:
            held = self.dra.usage if self.dra is not None else Usage()
            object.__setattr__(self, "_used", sum((c.usage() for c in self.charges), held))
        assert self._used is not None
        return self._used

    @property
    def remaining(self) -> Usage:
        """Capacity minus use, never below zero on any axis."""
        left = self.capacity - self.used
        return Usage(
            local=LinkBudget(max(0, left.local.ul_mbps), max(0, left.local.dl_mbps)),
            network=LinkBudget(max(0, left.network.ul_mbps), max(0, left.network.dl_mbps)),
        )

    @property
    def oversubscribed(self) -> tuple[Axis, ...]:
        return tuple(overcommitted_axes(self.capacity, self.used))


def _pod_deleted(reservation: Reservation) -> Release:
    return Release(
        reservation,
        ReleaseReason.POD_DELETED,
        f"pod {reservation.pod_namespace}/{reservation.pod_name} (UID {reservation.pod_uid}) "
        "no longer exists",
    )


def _release_of(
    reservation: Reservation,
    pod: PodBasics,
    node: str,
    since: datetime,
    grace: timedelta,
    now: datetime,
) -> Release | None:
    who = f"pod {reservation.pod_namespace}/{reservation.pod_name}"
    if pod.terminal:
        reason = ReleaseReason.POD_SUCCEEDED if pod.phase == SUCCEEDED else ReleaseReason.POD_FAILED
        return Release(reservation, reason, f"{who} has finished ({pod.phase})")
    if pod.node_name and pod.node_name != node:
        return Release(
            reservation,
            ReleaseReason.BOUND_ELSEWHERE,
            f"{who} is bound to node {pod.node_name}, not {node}",
        )
    if not pod.node_name and now - since >= grace:
        return Release(
            reservation,
            ReleaseReason.NEVER_BOUND,
            f"{who} was not bound within {grace.total_seconds():g}s of its reservation",
        )
    return None


def rebuilt_reservations(
    node: str, pods_on_node: Iterable[PodBasics], *, now: datetime, limit: int
) -> list[Reservation]:
    """The ledger to create a node's Bandwidth with: an entry for every live pod bound to the
    node whose bandwidth annotations ask for something, ``limit`` at most (the CRD's
    ``maxItems``; the others are charged as observed). Entries carry no ``scheduler`` (the
    controller wrote them, no scheduler did); a pod whose annotations do not read is left out,
    as it is charged nothing (``keep_books`` reports it)."""
    rebuilt = []
    for pod in pods_on_node:
        if (
            pod.node_name != node
            or pod.terminal
            or not pod.asks_bandwidth
            or pod.invalid is not None
            or pod.bandwidth.is_zero()
        ):
            continue
        rebuilt.append(
            Reservation(pod.uid, pod.name, pod.namespace, pod.bandwidth, reserved_at=now)
        )
    rebuilt.sort(key=lambda r: (r.pod_namespace, r.pod_name, r.pod_uid))
    return rebuilt[:limit]


def keep_books(
    bandwidth: NodeBandwidth,
    pods_on_node: Iterable[PodBasics],
    reserved_pods: Mapping[str, PodBasics | None],
    *,
    unbound_grace: timedelta,
    now: datetime,
    replicaset_owner: ReplicaSetOwner,
    first_seen: Mapping[str, datetime] | None = None,
    dra: DraHolding | None = None,
) -> Books:
    """The node's books after releasing what is stale.

    ``reserved_pods`` maps a reservation's pod UID to the pod, or to ``None`` (or leaves it
    out) when no such pod exists. A reservation that is not ``dated`` (no ``reservedAt``, one
    out of range, or one far in the future) has its grace counted from ``first_seen[uid]``
    (when the controller first saw it), else from ``now``. ``dra`` is what DRA claims hold on
    the node, when DRA sharing is on.
    """
    node = bandwidth.node
    first_seen = first_seen or {}
    charges: list[Charge] = []
    releases: list[Release] = []
    review_at: datetime | None = None
    for uid, reservation in bandwidth.reservations.items():
        pod = reserved_pods.get(uid)
        if pod is None or pod.uid != uid:
            releases.append(_pod_deleted(reservation))
            continue
        since = (
            reservation.reserved_at
            if reservation.reserved_at is not None and dated(reservation, now)
            else first_seen.get(uid) or now
        )
        release = _release_of(reservation, pod, node, since, unbound_grace, now)
        if release is not None:
            releases.append(release)
            continue
        if not pod.node_name:
            deadline = later(since, unbound_grace)
            review_at = deadline if review_at is None else min(review_at, deadline)
        charges.append(
            Charge(
                pod_uid=uid,
                pod_name=reservation.pod_name,
                pod_namespace=reservation.pod_namespace,
                ul_mbps=reservation.request.ul_mbps,
                dl_mbps=reservation.request.dl_mbps,
                link_local=reservation.request.link_local,
                source=SOURCE_SCHEDULER,
                pod_ip=pod.pod_ip,
                phase=pod.phase,
                workload=workload_of(pod, replicaset_owner),
            )
        )
    unhonoured: list[UnhonouredPod] = []
    held_by_claims = dra.pod_uids if dra is not None else frozenset()
    for pod in pods_on_node:
        if (
            pod.node_name != node
            or pod.terminal
            or pod.uid in bandwidth.reservations
            or pod.uid in held_by_claims
            or not pod.asks_bandwidth
        ):
            continue
        if pod.invalid is not None:
            unhonoured.append(UnhonouredPod(pod, pod.invalid))
            continue
        request = pod.bandwidth
        charges.append(
            Charge(
                pod_uid=pod.uid,
                pod_name=pod.name,
                pod_namespace=pod.namespace,
                ul_mbps=request.ul_mbps,
                dl_mbps=request.dl_mbps,
                link_local=request.link_local,
                source=SOURCE_OBSERVED,
                pod_ip=pod.pod_ip,
                phase=pod.phase,
                workload=workload_of(pod, replicaset_owner),
            )
        )
    charges.sort(key=lambda c: (c.pod_namespace, c.pod_name, c.pod_uid))
    return Books(
        node=node,
        capacity=bandwidth.capacity,
        charges=tuple(charges),
        releases=tuple(releases),
        unhonoured=tuple(unhonoured),
        review_at=review_at,
        dra=dra,
    )
