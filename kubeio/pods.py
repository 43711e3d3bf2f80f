"""The one reader of what both daemons need from a pod: who it is, where it runs, how far it
got, who owns it, and the bandwidth it asks for.

The scheduler's ``PodFacts`` add what a decision needs (resources, affinity, tolerations...);
the accounting controller's books read ``PodBasics`` as they are. Reading never raises: an
annotation that cannot be honoured is kept as ``invalid`` (and charged nothing), so each
daemon can say so on the pod instead of guessing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bandwidth.request import (
    NO_REQUEST,
    BandwidthRequest,
    InvalidBandwidthAnnotation,
    RequestPolicy,
    carries_bandwidth_annotations,
    request_from_annotations,
)
from kubeio.objects import TERMINAL_PHASES, controller_reference

JSON = dict[str, Any]


@dataclass(frozen=True, slots=True)
class OwnerRef:
    """The object that controls a pod (its ``controller: true`` owner), e.g. a ReplicaSet."""

    kind: str
    name: str
    uid: str

    def to_json(self) -> JSON:
        return {"kind": self.kind, "name": self.name, "uid": self.uid}


def owner_of(metadata: Mapping[str, Any]) -> OwnerRef | None:
    """The owner reference marked ``controller: true`` in ``metadata``, if any."""
    reference = controller_reference(metadata)
    if not reference:
        return None
    return OwnerRef(
        kind=str(reference.get("kind", "")),
        name=str(reference.get("name", "")),
        uid=str(reference.get("uid", "")),
    )


@dataclass(frozen=True, slots=True)
class PodBasics:
    uid: str
    namespace: str
    name: str
    node_name: str
    phase: str
    """``status.phase``; ``Pending`` when the pod has none yet."""
    pod_ip: str
    owner: OwnerRef | None
    bandwidth: BandwidthRequest
    """What the pod is charged: its annotations, or the policy's defaults; nothing if
    ``invalid``."""
    asks_bandwidth: bool
    """Whether the pod carries a bandwidth annotation at all (pods placed by other
    schedulers are charged only then)."""
    invalid: InvalidBandwidthAnnotation | None = None

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def terminal(self) -> bool:
        """Succeeded or Failed: the pod holds no resources and no bandwidth any more."""
        return self.phase in TERMINAL_PHASES

    @property
    def bound(self) -> bool:
        return bool(self.node_name)


def read_pod_basics(pod: Mapping[str, Any], policy: RequestPolicy) -> PodBasics:
    metadata = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    annotations = metadata.get("annotations") or {}
    invalid = None
    try:
        bandwidth = request_from_annotations(annotations, policy)
    except InvalidBandwidthAnnotation as error:
        bandwidth, invalid = NO_REQUEST, error
    return PodBasics(
        uid=str(metadata.get("uid", "")),
        namespace=str(metadata.get("namespace", "")),
        name=str(metadata.get("name", "")),
        node_name=str(spec.get("nodeName") or ""),
        phase=str(status.get("phase") or "Pending"),
        pod_ip=str(status.get("podIP") or ""),
        owner=owner_of(metadata),
        bandwidth=bandwidth,
        asks_bandwidth=carries_bandwidth_annotations(annotations, policy.keys),
        invalid=invalid,
    )
