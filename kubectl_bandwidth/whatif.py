"""Would a workload fit, and where: ``kubectl bandwidth what-if``.

Pure. The replicas are placed one after another exactly as the scheduling loop places pods: the
workload is made known to ``ClusterState`` through its StatefulSet/ReplicaSet handlers (so the
siblings-to-come score counts them), each replica gets ``context_for`` → ``Decider.choose`` →
``assume``, and every later replica sees the earlier ones as in-flight decisions. Nothing is
written to the cluster; the snapshot is spent by the simulation.
"""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from bandwidth.budget import Usage
from bandwidth.request import BandwidthRequest
from kubectl_bandwidth.diagnosis import unsupported_message
from kubectl_bandwidth.errors import BadInput
from kubectl_bandwidth.snapshot import Snapshot
from kubeio.watchcache import ADDED
from scheduler.decider import Decider
from scheduler.explain import unschedulable_message
from scheduler.podfacts import read_pod

JSON = dict[str, Any]

KINDS = ("Pod", "Deployment", "StatefulSet")
# The ReplicaSet of a simulated Deployment: <deployment>-<pod-template-hash>, as the Deployment
# controller names it, so the scheduler's naming rule finds the Deployment.
TEMPLATE_HASH = "whatif"


@dataclass(frozen=True, slots=True)
class Workload:
    kind: str
    namespace: str
    name: str
    template: JSON
    replicas: int

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"


@dataclass(frozen=True, slots=True)
class Placement:
    pod: str
    node: str | None
    reason: str = ""


@dataclass(frozen=True, slots=True)
class NodeChange:
    node: str
    placed: int
    capacity: Usage
    free_before: Usage
    free_after: Usage


@dataclass(frozen=True, slots=True)
class WhatIf:
    workload: Workload
    request: BandwidthRequest
    scheduler_name: str
    ours: bool
    placements: tuple[Placement, ...]
    changes: tuple[NodeChange, ...]
    rejected: str = ""

    @property
    def placed(self) -> Counter[str]:
        return Counter(p.node for p in self.placements if p.node is not None)

    @property
    def fits(self) -> bool:
        return not self.rejected and all(p.node is not None for p in self.placements)


def read_workload(
    obj: Mapping[str, Any], *, default_namespace: str, replicas: int | None
) -> Workload:
    """A Pod, Deployment or StatefulSet manifest as a pod template and a replica count."""
    kind = obj.get("kind")
    if kind not in KINDS:
        raise BadInput(f"what-if takes a Pod, a Deployment or a StatefulSet, not {kind!r}")
    metadata = obj.get("metadata") or {}
    name = str(metadata.get("name") or metadata.get("generateName") or "").rstrip("-")
    if not name:
        raise BadInput(f"the {kind} has no metadata.name")
    namespace = str(metadata.get("namespace") or default_namespace)
    if kind == "Pod":
        template: Any = {"metadata": metadata, "spec": obj.get("spec")}
        count = 1
    else:
        spec = obj.get("spec") or {}
        template = spec.get("template")
        raw_count = spec.get("replicas", 1)
        if not isinstance(raw_count, int) or isinstance(raw_count, bool) or raw_count < 0:
            raise BadInput(f"the {kind}'s spec.replicas is not a whole number: {raw_count!r}")
        count = raw_count
    if not isinstance(template, Mapping) or not isinstance(template.get("spec"), Mapping):
        raise BadInput(f"the {kind} has no pod spec")
    if replicas is not None:
        count = replicas
    return Workload(str(kind), namespace, name, copy.deepcopy(dict(template)), count)


def _owner(kind: str, name: str, uid: str) -> JSON:
    return {"apiVersion": "apps/v1", "kind": kind, "name": name, "uid": uid, "controller": True}


def replica_pods(workload: Workload) -> list[JSON]:
    """The pods the workload's controller would create, owned and labelled as it would."""
    pods = []
    for index in range(workload.replicas):
        metadata = copy.deepcopy(dict(workload.template.get("metadata") or {}))
        labels = dict(metadata.get("labels") or {})
        owners: list[JSON] = []
        if workload.kind == "StatefulSet":
            name = f"{workload.name}-{index}"
            owners = [_owner("StatefulSet", workload.name, "what-if-statefulset")]
        elif workload.kind == "Deployment":
            name = f"{workload.name}-{TEMPLATE_HASH}-{index}"
            labels["pod-template-hash"] = TEMPLATE_HASH
            owners = [
                _owner("ReplicaSet", f"{workload.name}-{TEMPLATE_HASH}", "what-if-replicaset")
            ]
        else:
            name = workload.name if workload.replicas == 1 else f"{workload.name}-{index}"
        spec = copy.deepcopy(dict(workload.template.get("spec") or {}))
        spec.pop("nodeName", None)
        metadata.update(
            name=name,
            namespace=workload.namespace,
            uid=f"what-if-{index}",
            labels=labels,
            ownerReferences=owners,
        )
        pods.append({"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec})
    return pods


def _announce(snapshot: Snapshot, workload: Workload) -> None:
    """Tell the state how many replicas the workload expects, as its watch caches would."""
    spec = {"replicas": workload.replicas}
    if workload.kind == "StatefulSet":
        statefulset = {"metadata": {"name": workload.name, "namespace": workload.namespace}}
        snapshot.state.on_statefulset(ADDED, None, {**statefulset, "spec": spec})
    elif workload.kind == "Deployment":
        metadata = {
            "name": f"{workload.name}-{TEMPLATE_HASH}",
            "namespace": workload.namespace,
            "ownerReferences": [_owner("Deployment", workload.name, "what-if-deployment")],
        }
        snapshot.state.on_replicaset(ADDED, None, {"metadata": metadata, "spec": spec})


def _free(snapshot: Snapshot) -> dict[str, Usage]:
    return {
        name: info.capacity - info.bandwidth_used
        for name, info in snapshot.state.nodes.items()
        if info.capacity is not None
    }


def simulate(snapshot: Snapshot, workload: Workload) -> WhatIf:
    """Place every replica in turn with the scheduler's decide + assume; report the nodes."""
    config = snapshot.config
    state = snapshot.state
    pods = replica_pods(workload)
    first = pods[0] if pods else replica_pods(replace(workload, replicas=1))[0]
    facts = read_pod(first, config.request_policy)
    # The scheduler turns these pods away before running any filter.
    rejected = facts.invalid or (unsupported_message(facts) if facts.unsupported else "")
    placements: list[Placement] = []
    changes: list[NodeChange] = []
    if rejected:
        placements = [Placement(pod["metadata"]["name"], None, rejected) for pod in pods]
    else:
        _announce(snapshot, workload)
        before = _free(snapshot)
        placements = _place(snapshot, pods)
        after = _free(snapshot)
        placed = Counter(p.node for p in placements if p.node is not None)
        for node in sorted(placed):
            changes.append(
                NodeChange(
                    node=node,
                    placed=placed[node],
                    # A pod asking no bandwidth may land on a node that has no ledger.
                    capacity=state.nodes[node].capacity or Usage(),
                    free_before=before.get(node, Usage()),
                    free_after=after.get(node, Usage()),
                )
            )
    return WhatIf(
        workload=workload,
        request=facts.bandwidth,
        scheduler_name=facts.scheduler_name,
        ours=facts.scheduler_name == config.scheduler_name,
        placements=tuple(placements),
        changes=tuple(changes),
        rejected=rejected,
    )


def _place(snapshot: Snapshot, pods: list[JSON]) -> list[Placement]:
    """What the scheduling loop does per pod, minus the writes: choose, then assume."""
    state = snapshot.state
    decider = Decider(snapshot.config.weights)
    placements = []
    for pod in pods:
        facts = read_pod(pod, snapshot.config.request_policy)
        with state.lock:
            ctx = state.context_for(facts)
            decision = decider.choose(state, ctx)
            if decision.node is not None:
                state.assume(ctx, decision.node)
        if decision.node is not None:
            placements.append(Placement(facts.name, decision.node))
        else:
            message = unschedulable_message(decision.nodes_considered, decision.reasons)
            placements.append(Placement(facts.name, None, message))
    return placements
