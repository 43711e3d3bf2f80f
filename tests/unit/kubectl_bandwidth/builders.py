"""Raw objects as the apiserver returns them, for snapshots built without a server."""

from __future__ import annotations

from typing import Any

from bandwidth.budget import LinkBudget, Usage
from bandwidth.model import new_bandwidth_object
from kubectl_bandwidth.snapshot import ClusterLists, Snapshot, build_snapshot
from scheduler.config import SchedulerConfig

JSON = dict[str, Any]
SCHEDULER = "vaclab-scheduler"
CONFIG = SchedulerConfig()
EGRESS = "kubernetes.io/egress-bandwidth"
INGRESS = "kubernetes.io/ingress-bandwidth"


def node(
    name: str,
    *,
    labels: dict[str, str] | None = None,
    ready: bool = True,
    unschedulable: bool = False,
    taints: list[JSON] | None = None,
    cpu: str = "32",
) -> JSON:
    return {
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **(labels or {})}},
        "spec": {"unschedulable": unschedulable, "taints": taints or []},
        "status": {
            "allocatable": {"cpu": cpu, "memory": "64Gi", "pods": "110"},
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


def bandwidth(
    node_name: str,
    *,
    network: tuple[int, int] = (1000, 1000),
    local: tuple[int, int] = (20000, 20000),
    reservations: list[JSON] | None = None,
    status: JSON | None = None,
) -> JSON:
    obj = new_bandwidth_object(
        node_name, Usage(local=LinkBudget(*local), network=LinkBudget(*network))
    )
    obj["metadata"]["resourceVersion"] = "1"
    obj["spec"]["reservations"] = reservations or []
    if status is not None:
        obj["status"] = status
    return obj


def reservation(
    uid: str, ul: int, dl: int, *, name: str = "", namespace: str = "lab", link_local: bool = False
) -> JSON:
    return {
        "podUID": uid,
        "podName": name or uid,
        "podNamespace": namespace,
        "linkLocal": link_local,
        "bandwidth": {"ulMbps": ul, "dlMbps": dl},
        "scheduler": SCHEDULER,
        "reservedAt": "2030-01-01T11:59:00Z",
    }


def pod(
    name: str,
    *,
    uid: str = "",
    node_name: str = "",
    egress: str | None = None,
    ingress: str | None = None,
    namespace: str = "lab",
    scheduler: str = SCHEDULER,
    owner: tuple[str, str] | None = None,
    labels: dict[str, str] | None = None,
    phase: str = "Pending",
    conditions: list[JSON] | None = None,
    extra_annotations: dict[str, str] | None = None,
) -> JSON:
    annotations = dict(extra_annotations or {})
    if egress is not None:
        annotations[EGRESS] = egress
    if ingress is not None:
        annotations[INGRESS] = ingress
    metadata: JSON = {
        "name": name,
        "namespace": namespace,
        "uid": uid or f"uid-{name}",
        "annotations": annotations,
        "labels": labels or {},
        "creationTimestamp": "2030-01-01T11:00:00Z",
    }
    if owner is not None:
        metadata["ownerReferences"] = [
            {"kind": owner[0], "name": owner[1], "uid": f"uid-{owner[1]}", "controller": True}
        ]
    spec: JSON = {
        "schedulerName": scheduler,
        "containers": [{"name": "app", "resources": {"requests": {"cpu": "100m"}}}],
    }
    if node_name:
        spec["nodeName"] = node_name
    return {
        "metadata": metadata,
        "spec": spec,
        "status": {"phase": phase, "conditions": conditions or []},
    }


def statefulset(name: str, replicas: int, namespace: str = "lab") -> JSON:
    return {"metadata": {"name": name, "namespace": namespace}, "spec": {"replicas": replicas}}


def snapshot(
    nodes: list[JSON],
    bandwidths: list[JSON],
    pods: list[JSON] | None = None,
    statefulsets: list[JSON] | None = None,
    config: SchedulerConfig = CONFIG,
) -> Snapshot:
    lists = ClusterLists(
        nodes=nodes, bandwidths=bandwidths, pods=pods or [], statefulsets=statefulsets or []
    )
    return build_snapshot(lists, config)
