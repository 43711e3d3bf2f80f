"""What the books need to know about a pod, and the workload it belongs to.

``PodView`` is read from the raw pod JSON the watch cache holds; ``slim_pod`` is the cache's
transform that keeps only what ``PodView`` reads, so tens of thousands of pods cost little
memory. A pod's workload is its controller owner, with a ReplicaSet that a Deployment controls
reported as that Deployment (what a person means by "the workload").
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from kubeio.objects import TERMINAL_PHASES, controller_reference

JSON = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Workload:
    """The object that controls a pod, e.g. ``Deployment/web``."""

    kind: str
    name: str
    uid: str

    def to_json(self) -> JSON:
        return {"kind": self.kind, "name": self.name, "uid": self.uid}


ReplicaSetOwner = Callable[[str, str], Workload | None]
"""``owner(namespace, replicaset_name)``: the ReplicaSet's own controller, if any."""


def controller_of(metadata: Mapping[str, Any]) -> Workload | None:
    """The owner reference marked ``controller: true`` in ``metadata``, if any."""
    reference = controller_reference(metadata)
    if not reference:
        return None
    return Workload(
        kind=str(reference.get("kind", "")),
        name=str(reference.get("name", "")),
        uid=str(reference.get("uid", "")),
    )


@dataclass(frozen=True, slots=True)
class PodView:
    uid: str
    name: str
    namespace: str
    node_name: str = ""
    phase: str = ""
    pod_ip: str = ""
    annotations: Mapping[str, str] = field(default_factory=dict)
    owner: Workload | None = None

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def terminal(self) -> bool:
        """Succeeded or Failed: the pod holds no bandwidth any more."""
        return self.phase in TERMINAL_PHASES

    @classmethod
    def from_json(cls, pod: Mapping[str, Any]) -> PodView:
        metadata = pod.get("metadata") or {}
        spec = pod.get("spec") or {}
        status = pod.get("status") or {}
        annotations = metadata.get("annotations") or {}
        return cls(
            uid=str(metadata.get("uid", "")),
            name=str(metadata.get("name", "")),
            namespace=str(metadata.get("namespace", "")),
            node_name=str(spec.get("nodeName") or ""),
            phase=str(status.get("phase") or ""),
            pod_ip=str(status.get("podIP") or ""),
            annotations={str(k): str(v) for k, v in annotations.items()},
            owner=controller_of(metadata),
        )

    def workload(self, replicaset_owner: ReplicaSetOwner) -> Workload | None:
        """The pod's controller, resolved through its ReplicaSet to the Deployment."""
        if self.owner is None:
            return None
        if self.owner.kind == "ReplicaSet":
            above = replicaset_owner(self.namespace, self.owner.name)
            if above is not None and above.kind == "Deployment":
                return above
        return self.owner


def slim_pod(pod: JSON, annotation_keys: Collection[str]) -> JSON:
    """The parts of a pod ``PodView`` reads; other annotations are dropped."""
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
