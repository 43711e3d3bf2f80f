"""The pods the books read, and the workload each belongs to.

A pod is read by ``kubeio.pods.read_pod_basics``, the reader both daemons share; ``slim_pod``
is the watch cache's transform that keeps only what that reader needs, so tens of thousands
of pods cost little memory. A pod's workload is its controller owner, with a ReplicaSet that a
Deployment controls reported as that Deployment (what a person means by "the workload").
"""

from __future__ import annotations

from collections.abc import Callable, Collection

from kubeio.pods import JSON, OwnerRef, PodBasics

Workload = OwnerRef
"""The object that controls a pod, e.g. ``Deployment/web``."""

ReplicaSetOwner = Callable[[str, str], Workload | None]
"""``owner(namespace, replicaset_name)``: the ReplicaSet's own controller, if any."""


def workload_of(pod: PodBasics, replicaset_owner: ReplicaSetOwner) -> Workload | None:
    """The pod's controller, resolved through its ReplicaSet to the Deployment."""
    if pod.owner is None:
        return None
    if pod.owner.kind == "ReplicaSet":
        above = replicaset_owner(pod.namespace, pod.owner.name)
        if above is not None and above.kind == "Deployment":
            return above
    return pod.owner


def slim_pod(pod: JSON, annotation_keys: Collection[str]) -> JSON:
    """The parts of a pod ``read_pod_basics`` reads; other annotations are dropped."""
    metadata = pod.get("metadata") or {}
    annotations = metadata.get("annotations") or {}
    slim_metadata: JSON = {
        key: metadata[key]
        for key in ("name", "namespace", "uid", "resourceVersion", "ownerReferences")
        if key in metadata
    }
    kept = {key: value for key, value in annotations.items() if key in annotation_keys}
    if kept:
        slim_metadata["annotations"] = kept
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    return {
        "metadata": slim_metadata,
        "spec": {"nodeName": spec["nodeName"]} if spec.get("nodeName") else {},
        "status": {key: status[key] for key in ("phase", "podIP") if key in status},
    }


def slim_metadata_only(obj: JSON) -> JSON:
    """Keep only ``metadata`` without managed fields: nodes and ReplicaSets need no more."""
    metadata = dict(obj.get("metadata") or {})
    metadata.pop("managedFields", None)
    return {"metadata": metadata}
