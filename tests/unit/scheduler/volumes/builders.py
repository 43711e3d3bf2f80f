"""JSON of the objects volume scheduling reads, and a ``ClusterState`` fed with them through
the same handlers the watch caches call."""

from __future__ import annotations

import itertools
from typing import Any

from kubeio.watchcache import ADDED, MODIFIED
from scheduler.cluster import ClusterState
from scheduler.config import SchedulerConfig
from scheduler.decide import Decision
from scheduler.decider import Decider
from scheduler.plugins.framework import PodContext
from scheduler.podfacts import read_pod
from scheduler.queue import SchedulingQueue

JSON = dict[str, Any]
HOSTNAME = "kubernetes.io/hostname"
_versions = itertools.count(100)


def _metadata(name: str, namespace: str | None = None, **extra: Any) -> JSON:
    metadata: JSON = {"name": name, "uid": f"uid-{name}", "resourceVersion": str(next(_versions))}
    if namespace is not None:
        metadata["namespace"] = namespace
    metadata.update({k: v for k, v in extra.items() if v is not None})
    return metadata


def on_node(name: str) -> JSON:
    """A required node affinity for the one node ``name`` (a local volume's)."""
    return {
        "required": {
            "nodeSelectorTerms": [
                {"matchExpressions": [{"key": HOSTNAME, "operator": "In", "values": [name]}]}
            ]
        }
    }


def pv(
    name: str,
    size: str = "10Gi",
    *,
    storage_class: str = "local",
    node: str | None = None,
    affinity: JSON | None = None,
    modes: tuple[str, ...] = ("ReadWriteOnce",),
    phase: str = "Available",
    claim: tuple[str, str] | None = None,
    claim_uid: str = "",
    labels: dict[str, str] | None = None,
    volume_mode: str | None = None,
    csi: tuple[str, str] | None = None,
    extra_spec: JSON | None = None,
) -> JSON:
    spec: JSON = {
        "capacity": {"storage": size},
        "accessModes": list(modes),
        "storageClassName": storage_class,
    }
    if node is not None:
        spec["nodeAffinity"] = on_node(node)
    if affinity is not None:
        spec["nodeAffinity"] = affinity
    if claim is not None:
        spec["claimRef"] = {"namespace": claim[0], "name": claim[1], "uid": claim_uid}
    if volume_mode is not None:
        spec["volumeMode"] = volume_mode
    if csi is not None:
        spec["csi"] = {"driver": csi[0], "volumeHandle": csi[1]}
    else:
        spec["local"] = {"path": f"/mnt/{name}"}
    spec.update(extra_spec or {})
    return {
        "metadata": _metadata(name, labels=labels),
        "spec": spec,
        "status": {"phase": phase},
    }


def pvc(
    name: str,
    size: str = "5Gi",
    *,
    namespace: str = "ns",
    storage_class: str | None = "local",
    volume: str | None = None,
    bound: bool = False,
    modes: tuple[str, ...] = ("ReadWriteOnce",),
    selected_node: str | None = None,
    selector: JSON | None = None,
    phase: str = "Pending",
    owner_uid: str | None = None,
    deleting: bool = False,
    volume_mode: str | None = None,
) -> JSON:
    annotations: JSON = {}
    if bound:
        annotations["pv.kubernetes.io/bind-completed"] = "yes"
    if selected_node is not None:
        annotations["volume.kubernetes.io/selected-node"] = selected_node
    owners = None
    if owner_uid is not None:
        owners = [{"kind": "Pod", "name": "owner", "uid": owner_uid, "controller": True}]
    spec: JSON = {"accessModes": list(modes), "resources": {"requests": {"storage": size}}}
    if storage_class is not None:
        spec["storageClassName"] = storage_class
    if volume is not None:
        spec["volumeName"] = volume
    if selector is not None:
        spec["selector"] = selector
    if volume_mode is not None:
        spec["volumeMode"] = volume_mode
    return {
        "metadata": _metadata(
            name,
            namespace,
            annotations=annotations,
            ownerReferences=owners,
            deletionTimestamp="2026-01-01T00:00:00Z" if deleting else None,
        ),
        "spec": spec,
        "status": {"phase": "Bound" if bound else phase},
    }


def storage_class(
    name: str = "local",
    *,
    provisioner: str = "kubernetes.io/no-provisioner",
    mode: str = "WaitForFirstConsumer",
    topologies: list[JSON] | None = None,
) -> JSON:
    body: JSON = {
        "metadata": _metadata(name),
        "provisioner": provisioner,
        "volumeBindingMode": mode,
    }
    if topologies is not None:
        body["allowedTopologies"] = topologies
    return body


def csinode(node: str, limits: dict[str, int]) -> JSON:
    drivers = [
        {"name": driver, "nodeID": node, "allocatable": {"count": count}}
        for driver, count in limits.items()
    ]
    return {"metadata": _metadata(node), "spec": {"drivers": drivers}}


def node(name: str, labels: dict[str, str] | None = None) -> JSON:
    return {
        "metadata": {"name": name, "labels": {HOSTNAME: name, **(labels or {})}},
        "spec": {},
        "status": {
            "allocatable": {"cpu": "8", "memory": "16Gi", "pods": "110"},
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    }


def pod(
    name: str,
    *,
    claims: tuple[str, ...] = (),
    ephemeral: tuple[str, ...] = (),
    node_name: str = "",
    namespace: str = "ns",
) -> JSON:
    volumes: list[JSON] = [
        {"name": f"v{index}", "persistentVolumeClaim": {"claimName": claim}}
        for index, claim in enumerate(claims)
    ]
    volumes += [{"name": volume, "ephemeral": {"volumeClaimTemplate": {}}} for volume in ephemeral]
    spec: JSON = {
        "schedulerName": "vaclab-scheduler",
        "containers": [{"name": "c", "resources": {"requests": {"cpu": "100m"}}}],
        "volumes": volumes,
    }
    if node_name:
        spec["nodeName"] = node_name
    return {
        "metadata": {"name": name, "namespace": namespace, "uid": f"uid-{name}"},
        "spec": spec,
        "status": {"phase": "Running" if node_name else "Pending"},
    }


class Cluster:
    """A ``ClusterState`` fed like the scheduler's watch caches feed it, and its decider."""

    def __init__(self, nodes: list[str] | None = None) -> None:
        self.config = SchedulerConfig()
        self.state = ClusterState(self.config, SchedulingQueue())
        self.decider = Decider(self.config.weights)
        for name in nodes or []:
            self.add_node(name)

    def add_node(self, name: str, labels: dict[str, str] | None = None) -> None:
        self.state.on_node(ADDED, None, node(name, labels))

    def add(self, *objects: JSON) -> None:
        handlers = {
            "pv": self.state.volumes.on_volume,
            "pvc": self.state.volumes.on_claim,
            "class": self.state.volumes.on_storage_class,
            "csinode": self.state.volumes.on_csinode,
        }
        for obj in objects:
            handlers[_kind(obj)](ADDED, None, obj)

    def update(self, obj: JSON) -> None:
        obj["metadata"]["resourceVersion"] = str(next(_versions))
        handler = {
            "pv": self.state.volumes.on_volume,
            "pvc": self.state.volumes.on_claim,
        }[_kind(obj)]
        handler(MODIFIED, obj, obj)

    def add_pod(self, body: JSON) -> None:
        self.state.on_pod(ADDED, None, body)

    def context(self, body: JSON) -> PodContext:
        return self.state.context_for(read_pod(body, self.config.request_policy))

    def decide(self, body: JSON, *, assume: bool = True) -> tuple[Decision, PodContext]:
        with self.state.lock:
            ctx = self.context(body)
            decision = self.decider.choose(self.state, ctx)
            if assume and decision.node is not None:
                self.state.assume(ctx, decision.node)
        return decision, ctx


def _kind(obj: JSON) -> str:
    if "provisioner" in obj:
        return "class"
    spec = obj.get("spec") or {}
    if "drivers" in spec:
        return "csinode"
    if "capacity" in spec:
        return "pv"
    return "pvc"
