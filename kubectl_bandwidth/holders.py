"""The pods holding bandwidth on one node: ``kubectl bandwidth reservations NODE``.

Pure. Two kinds of holder, as the scheduler counts them:

- ``Scheduler``: an entry of the node's ledger (``spec.reservations``), whatever its pod's
  state now — a pending pod, a pod bound elsewhere or a deleted one still holds it until the
  accounting controller releases it, and the row says so;
- ``Observed``: a live pod bound to the node asking for bandwidth without a ledger entry
  (placed by another scheduler).

The workload is the one the accounting controller wrote in ``status.reservations`` when it did,
else the pod's controller owner, a ReplicaSet read as its Deployment by the scheduler's rule.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bandwidth.budget import Usage
from bandwidth.model import NodeBandwidth, parse_bandwidth
from bandwidth.request import BandwidthRequest, RequestPolicy
from kubectl_bandwidth.diagnosis import SOURCE_OBSERVED, SOURCE_SCHEDULER
from scheduler.podfacts import PodFacts, read_pod, workload_of

POD_GONE = "Gone"
POD_UNBOUND = "Unbound"


@dataclass(frozen=True, slots=True)
class Holder:
    namespace: str
    name: str
    uid: str
    request: BandwidthRequest
    source: str
    workload: str = ""
    scheduler: str = ""
    reserved_at: datetime | None = None
    pod_state: str = ""

    @property
    def pod(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True, slots=True)
class NodeHolding:
    node: str
    ledger: NodeBandwidth
    holders: tuple[Holder, ...]

    @property
    def charged(self) -> Usage:
        total = Usage()
        for holder in self.holders:
            total = total + holder.request.charge()
        return total


def _status_workloads(bandwidth: Mapping[str, Any]) -> dict[str, str]:
    """``podUID`` → ``Kind/name`` from the accounting controller's ``status.reservations``."""
    found = {}
    for entry in (bandwidth.get("status") or {}).get("reservations") or []:
        workload = entry.get("workload") if isinstance(entry, Mapping) else None
        if isinstance(workload, Mapping) and workload.get("kind") and workload.get("name"):
            found[str(entry.get("podUID", ""))] = f"{workload['kind']}/{workload['name']}"
    return found


def _owner_workload(facts: PodFacts) -> str:
    workload = workload_of(facts, {})
    return f"{workload.kind}/{workload.name}" if workload is not None else ""


def _pod_state(facts: PodFacts | None, node: str) -> str:
    if facts is None:
        return POD_GONE
    if not facts.bound:
        return POD_UNBOUND
    if facts.node_name != node:
        return f"on {facts.node_name}"
    return facts.phase


def node_holding(
    node: str,
    bandwidth: Mapping[str, Any],
    pods: Iterable[Mapping[str, Any]],
    policy: RequestPolicy,
) -> NodeHolding:
    """Raises ``bandwidth.model.MalformedBandwidth`` when the object has no readable capacity."""
    ledger = parse_bandwidth(bandwidth)
    facts_by_uid = {facts.uid: facts for facts in (read_pod(pod, policy) for pod in pods)}
    written = _status_workloads(bandwidth)

    def workload(uid: str) -> str:
        facts = facts_by_uid.get(uid)
        return written.get(uid) or (_owner_workload(facts) if facts is not None else "")

    holders = []
    for uid, reservation in ledger.reservations.items():
        # A pod recreated under the same name is another pod: the reservation's is gone.
        facts = facts_by_uid.get(uid)
        holders.append(
            Holder(
                namespace=reservation.pod_namespace,
                name=reservation.pod_name,
                uid=uid,
                request=reservation.request,
                source=SOURCE_SCHEDULER,
                workload=workload(uid),
                scheduler=reservation.scheduler,
                reserved_at=reservation.reserved_at,
                pod_state=_pod_state(facts, node),
            )
        )
    for uid, facts in facts_by_uid.items():
        if uid in ledger.reservations or facts.node_name != node or facts.terminal:
            continue
        if facts.bandwidth.is_zero():
            continue
        holders.append(
            Holder(
                namespace=facts.namespace,
                name=facts.name,
                uid=uid,
                request=facts.bandwidth,
                source=SOURCE_OBSERVED,
                workload=workload(uid),
                scheduler=facts.scheduler_name,
                pod_state=facts.phase,
            )
        )
    holders.sort(key=lambda h: (h.namespace, h.name, h.uid))
    return NodeHolding(node=node, ledger=ledger, holders=tuple(holders))
