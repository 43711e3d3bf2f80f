"""Would a workload fit, and where: ``kubectl bandwidth what-if``.

Pure. Each replica gets the scheduler's own verdict (``scheduler.verdict.judge``, with
``assume``), one after another as the scheduling loop takes them: the workload is made known to
``ClusterState`` through its StatefulSet/ReplicaSet handlers (so the siblings-to-come score
counts it), and every later replica sees the earlier ones as in-flight decisions. A replica
the scheduler would refuse (invalid request, unsupported constraint) is reported with the
refusal the scheduler writes, and no node is looked at. Nothing is written to the cluster; the
snapshot is spent by the simulation.

A workload that already runs (same kind, namespace and name) is scaled, not placed anew:

- its bound pods stay where they are, and count as siblings placed;
- its pods still pending are placed first, as they are (they wait in the scheduler's queue);
- new pods come from the manifest's template: a StatefulSet's missing ordinals below the
  replica count (so ordinals continue), a Deployment's missing replicas;
- fewer replicas than exist places nothing (``removed`` says how many would go).

Several workloads (a multi-document file) are simulated in file order on the same snapshot,
as if applied together: each sees the ones before it placed.
"""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from bandwidth.budget import Usage
from bandwidth.request import BandwidthRequest
from kubectl_bandwidth.errors import BadInput
from kubectl_bandwidth.snapshot import Snapshot
from kubeio.watchcache import ADDED
from scheduler.cluster import ClusterState
from scheduler.config import SchedulerConfig
from scheduler.decider import Decider
from scheduler.podfacts import WorkloadKey, read_pod
from scheduler.verdict import judge

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
    claim_templates: tuple[JSON, ...] = ()
    """A StatefulSet's ``volumeClaimTemplates``: each replica gets a claim of its own."""

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"

    @property
    def key(self) -> WorkloadKey:
        return WorkloadKey(self.kind, self.namespace, self.name)


@dataclass(frozen=True, slots=True)
class Placement:
    """One simulated pod: the node it would get, or the Event reason and message it would."""

    pod: str
    node: str | None
    reason: str = ""
    message: str = ""
    existing: bool = False


@dataclass(frozen=True, slots=True)
class NodeChange:
    node: str
    placed: int
    capacity: Usage
    free_before: Usage
    free_after: Usage


@dataclass(frozen=True, slots=True)
class Existing:
    """What already runs of the workload."""

    bound: tuple[str, ...] = ()
    pending: tuple[JSON, ...] = ()
    removed: int = 0

    @property
    def count(self) -> int:
        return len(self.bound) + len(self.pending)


@dataclass(frozen=True, slots=True)
class WhatIf:
    workload: Workload
    request: BandwidthRequest
    scheduler_name: str
    ours: bool
    placements: tuple[Placement, ...]
    changes: tuple[NodeChange, ...]
    existing: Existing = field(default_factory=Existing)
    invalid: str = ""

    @property
    def placed(self) -> Counter[str]:
        return Counter(p.node for p in self.placements if p.node is not None)

    @property
    def new(self) -> int:
        return sum(1 for p in self.placements if not p.existing)

    @property
    def fits(self) -> bool:
        return all(p.node is not None for p in self.placements)


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
    claims = (obj.get("spec") or {}).get("volumeClaimTemplates") if kind == "StatefulSet" else None
    return Workload(
        str(kind),
        namespace,
        name,
        copy.deepcopy(dict(template)),
        count,
        tuple(copy.deepcopy(dict(c)) for c in claims or () if isinstance(c, Mapping)),
    )


def read_workloads(
    objects: Iterable[Mapping[str, Any]], *, default_namespace: str, replicas: int | None
) -> tuple[list[Workload], list[str]]:
    """The workloads among ``objects`` (a manifest's documents), and the other objects as
    ``Kind/name``: a StatefulSet's Service or a ConfigMap beside it is skipped, not refused."""
    workloads: list[Workload] = []
    skipped: list[str] = []
    objects = list(objects)
    for obj in objects:
        if obj.get("kind") in KINDS:
            workloads.append(read_workload(obj, default_namespace=default_namespace, replicas=None))
        else:
            name = (obj.get("metadata") or {}).get("name", "")
            skipped.append(f"{obj.get('kind')}/{name}" if name else str(obj.get("kind")))
    if not workloads:
        kinds = ", ".join(repr(obj.get("kind")) for obj in objects)
        raise BadInput(f"what-if takes a Pod, a Deployment or a StatefulSet, not {kinds}")
    if replicas is not None:
        if len(workloads) > 1:
            raise BadInput(
                f"--replicas applies to one workload; the manifest holds {len(workloads)}"
            )
        workloads = [_with_replicas(workloads[0], replicas)]
    return workloads, skipped


def _with_replicas(workload: Workload, replicas: int) -> Workload:
    return replace(workload, replicas=replicas)


def _owner(kind: str, name: str, uid: str) -> JSON:
    return {"apiVersion": "apps/v1", "kind": kind, "name": name, "uid": uid, "controller": True}


def _pod(workload: Workload, name: str, uid: str, owners: list[JSON], labels: JSON) -> JSON:
    metadata = copy.deepcopy(dict(workload.template.get("metadata") or {}))
    spec = copy.deepcopy(dict(workload.template.get("spec") or {}))
    spec.pop("nodeName", None)
    metadata.update(
        name=name,
        namespace=workload.namespace,
        uid=uid,
        labels={**(metadata.get("labels") or {}), **labels},
        ownerReferences=owners,
    )
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec}


def replica_pods(
    workload: Workload, taken: Iterable[str] = (), missing: int | None = None
) -> list[JSON]:
    """The pods the workload's controller would create, owned and labelled as it would.

    ``taken`` names pods that exist: a StatefulSet creates only its missing ordinals. A
    Deployment creates ``missing`` pods (default: its replica count).
    """
    taken = set(taken)
    pods = []
    if workload.kind == "StatefulSet":
        owner = [_owner("StatefulSet", workload.name, "what-if-statefulset")]
        for index in range(workload.replicas):
            name = f"{workload.name}-{index}"
            if name not in taken:
                replica = _pod(workload, name, f"what-if-{name}", owner, {})
                _add_claims(replica, workload, name)
                pods.append(replica)
    elif workload.kind == "Deployment":
        owner = [_owner("ReplicaSet", f"{workload.name}-{TEMPLATE_HASH}", "what-if-replicaset")]
        count = workload.replicas if missing is None else missing
        hashed = {"pod-template-hash": TEMPLATE_HASH}
        for index in range(count):
            name = f"{workload.name}-{TEMPLATE_HASH}-{index}"
            pods.append(_pod(workload, name, f"what-if-{name}", owner, hashed))
    elif workload.name not in taken:
        count = workload.replicas
        for index in range(count):
            name = workload.name if count == 1 else f"{workload.name}-{index}"
            pods.append(_pod(workload, name, f"what-if-{name}", [], {}))
    return pods


def _add_claims(pod: JSON, workload: Workload, pod_name: str) -> None:
    """A volume per claim template, bound to the claim ``<template>-<pod>``, replacing a volume
    of the same name, as the StatefulSet controller writes them."""
    claims = {
        str((template.get("metadata") or {}).get("name", "")): f"{name}-{pod_name}"
        for template in workload.claim_templates
        if (name := str((template.get("metadata") or {}).get("name", "")))
    }
    if not claims:
        return
    volumes = [v for v in pod["spec"].get("volumes") or [] if v.get("name") not in claims]
    volumes += [
        {"name": volume, "persistentVolumeClaim": {"claimName": claim}}
        for volume, claim in claims.items()
    ]
    pod["spec"]["volumes"] = volumes


def existing_pods(snapshot: Snapshot, workload: Workload) -> Existing:
    """The live pods of ``workload`` in the snapshot: bound ones by name, pending ones whole."""
    bound: list[str] = []
    pending: list[JSON] = []
    for pod in snapshot.pods:
        facts = read_pod(pod, snapshot.config.request_policy)
        if facts.namespace != workload.namespace:
            continue
        if workload.kind == "Pod":
            mine = facts.name == workload.name
        else:
            mine = snapshot.state.context_for(facts).workload == workload.key
        if not mine:
            continue
        if facts.bound:
            bound.append(facts.name)
        elif not facts.deleting:
            pending.append(pod)
    removed = max(0, len(bound) + len(pending) - workload.replicas)
    return Existing(tuple(sorted(bound)), tuple(pending), removed)


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


def _announce_claims(snapshot: Snapshot, workload: Workload, pods: list[JSON]) -> None:
    """The claims the StatefulSet controller creates for new replicas, as the apiserver admits
    them (the default StorageClass filled in), so the replicas are judged against the claims
    the scheduler will see."""
    volumes = snapshot.state.volumes
    default_class = volumes.default_storage_class()
    for pod in pods:
        for template in workload.claim_templates:
            name = f"{(template.get('metadata') or {}).get('name', '')}-{pod['metadata']['name']}"
            if volumes.api_claim(workload.namespace, name) is not None:
                continue
            spec = copy.deepcopy(dict(template.get("spec") or {}))
            if "storageClassName" not in spec and default_class:
                spec["storageClassName"] = default_class
            metadata = {"name": name, "namespace": workload.namespace, "uid": f"what-if-{name}"}
            claim = {"metadata": metadata, "spec": spec, "status": {"phase": "Pending"}}
            volumes.on_claim(ADDED, None, claim)


def _free(snapshot: Snapshot) -> dict[str, Usage]:
    return {
        name: info.capacity - info.bandwidth_used
        for name, info in snapshot.state.nodes.items()
        if info.capacity is not None
    }


def _pods_to_place(workload: Workload, existing: Existing) -> list[tuple[JSON, bool]]:
    """Pending pods of the workload first, then the new ones; each with ``existing``."""
    if existing.removed:
        return []
    taken = [*existing.bound, *(p["metadata"]["name"] for p in existing.pending)]
    new = replica_pods(workload, taken, missing=workload.replicas - existing.count)
    return [(pod, True) for pod in existing.pending] + [(pod, False) for pod in new]


def simulate(snapshot: Snapshot, workload: Workload) -> WhatIf:
    """Judge every replica to place in turn, as the scheduler would; report the nodes."""
    config = snapshot.config
    state = snapshot.state
    existing = existing_pods(snapshot, workload)
    to_place = _pods_to_place(workload, existing)
    template = replica_pods(_with_replicas(workload, 1))[0]
    facts = read_pod(template, config.request_policy)
    _announce(snapshot, workload)
    _announce_claims(snapshot, workload, [pod for pod, existing in to_place if not existing])
    before = _free(snapshot)
    decider = Decider(config.weights)
    placements = [_place(state, decider, config, pod, mine) for pod, mine in to_place]
    after = _free(snapshot)
    placed = Counter(p.node for p in placements if p.node is not None)
    changes = [
        NodeChange(
            node=node,
            placed=placed[node],
            # A pod asking no bandwidth may land on a node that has no ledger.
            capacity=state.nodes[node].capacity or Usage(),
            free_before=before.get(node, Usage()),
            free_after=after.get(node, Usage()),
        )
        for node in sorted(placed)
    ]
    return WhatIf(
        workload=workload,
        request=facts.bandwidth,
        scheduler_name=facts.scheduler_name,
        ours=facts.scheduler_name == config.scheduler_name,
        placements=tuple(placements),
        changes=tuple(changes),
        existing=existing,
        invalid=facts.invalid,
    )


def _place(
    state: ClusterState, decider: Decider, config: SchedulerConfig, pod: JSON, existing: bool
) -> Placement:
    """What the scheduling loop decides for one pod, minus the writes: judge and assume."""
    facts = read_pod(pod, config.request_policy)
    verdict = judge(state, decider, facts, assume=True)
    return Placement(facts.name, verdict.node, verdict.reason, verdict.message, existing)
