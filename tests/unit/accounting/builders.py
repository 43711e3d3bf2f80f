"""Small builders of domain values for the accounting unit tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from accounting.books import Books, keep_books
from bandwidth.budget import LinkBudget, Usage
from bandwidth.model import NodeBandwidth, Reservation
from bandwidth.request import BandwidthRequest, RequestPolicy
from kubeio.pods import PodBasics, read_pod_basics

NOW = datetime(2030, 1, 1, 12, 0, 0, tzinfo=UTC)
GRACE = timedelta(seconds=60)
CAPACITY = Usage(local=LinkBudget(20000, 20000), network=LinkBudget(1000, 1000))
EGRESS = "kubernetes.io/egress-bandwidth"
INGRESS = "kubernetes.io/ingress-bandwidth"


def reservation(
    uid: str,
    ul: int = 100,
    dl: int = 100,
    *,
    link_local: bool = False,
    age: float = 1.0,
    name: str | None = None,
) -> Reservation:
    return Reservation(
        pod_uid=uid,
        pod_name=name or f"pod-{uid}",
        pod_namespace="lab",
        request=BandwidthRequest(ul, dl, link_local),
        scheduler="vaclab-scheduler",
        reserved_at=NOW - timedelta(seconds=age),
    )


def ledger(
    *reservations: Reservation, capacity: Usage = CAPACITY, node: str = "n1"
) -> NodeBandwidth:
    return NodeBandwidth(
        name=node,
        node=node,
        capacity=capacity,
        reservations={r.pod_uid: r for r in reservations},
        resource_version="7",
        generation=3,
    )


def pod(
    uid: str,
    node: str = "n1",
    phase: str = "Running",
    *,
    annotations: dict[str, str] | None = None,
    name: str | None = None,
) -> PodBasics:
    """A pod as the accounting controller reads it (``kubeio.pods``, default keys)."""
    raw = {
        "metadata": {
            "uid": uid,
            "name": name or f"pod-{uid}",
            "namespace": "lab",
            "annotations": annotations or {},
        },
        "spec": {"nodeName": node} if node else {},
        "status": {"phase": phase, **({"podIP": "10.0.0.1"} if node else {})},
    }
    return read_pod_basics(raw, RequestPolicy())


def books(
    bandwidth: NodeBandwidth,
    pods: list[PodBasics],
    *,
    now: datetime = NOW,
    grace: timedelta = GRACE,
) -> Books:
    """The books with every pod both on the node list and findable by reservation UID."""
    return keep_books(
        bandwidth,
        [p for p in pods if p.node_name == bandwidth.node],
        {p.uid: p for p in pods},
        unbound_grace=grace,
        now=now,
        replicaset_owner=lambda namespace, name: None,
    )
